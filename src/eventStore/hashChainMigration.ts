/**
 * Chains the history written before the hash chain existed (rows with no hash), once: every such row
 * gets its prev_hash and hash, in one transaction that keeps appenders out,
 * and the log says how many events were chained. Later starts find nothing to do (one probe of a
 * partial index that is empty once everything is chained).
 */
import type { Database } from '../database/database.js';
import type { Logger } from '../logger.js';
import { GENESIS_HASH, fastEventHash, hashedMetadata } from './hashChain.js';
import type { JsonObject } from './eventStore.js';

const PAGE = 5_000;

type Row = { stream_name: string; revision: string; event_type: string; data: JsonObject; metadata: JsonObject };

/** Is any row still unchained? Answered by the partial index es_events_unchained, whatever the log's size. */
export const UNCHAINED_PROBE = 'select 1 from es_events where hash is null limit 1';

export async function chainUnhashedHistory(database: Database, logger?: Logger): Promise<number> {
  const probe = await database.pool.query(UNCHAINED_PROBE);
  if (probe.rows.length === 0) return 0;
  const { events, streams } = await database.withTransaction(async (client) => {
    await client.query(`select pg_advisory_xact_lock(hashtextextended(current_schema() || '/migrate:hash_chain', 0))`);
    // Appenders wait (they update es_streams first); a concurrent starter finds the work done after the lock.
    await client.query('lock table es_streams in exclusive mode');
    let after: [string, string] = ['', '-1'];
    let stream: string | null = null;
    let prev = GENESIS_HASH;
    let chained = 0;
    const streams = new Set<string>();
    for (;;) {
      const { rows } = await client.query<Row>(
        `select stream_name, revision, event_type, data, metadata from es_events
         where (stream_name, revision) > ($1, $2::bigint) and hash is null order by stream_name, revision limit ${PAGE}`,
        after,
      );
      if (rows.length === 0) break;
      const links: Array<{ stream: string; revision: string; prev: string; hash: string }> = [];
      for (const row of rows) {
        if (row.stream_name !== stream) {
          stream = row.stream_name;
          prev = await hashBefore(client, row.stream_name, row.revision);
        }
        const hash = fastEventHash(prev, {
          stream,
          revision: BigInt(row.revision),
          type: row.event_type,
          data: row.data,
          metadata: hashedMetadata(row.metadata),
        });
        links.push({ stream, revision: row.revision, prev, hash });
        streams.add(stream);
        prev = hash;
      }
      await client.query(
        `update es_events e set prev_hash = decode(u.prev, 'hex'), hash = decode(u.hash, 'hex')
         from unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) as u(stream_name, revision, prev, hash)
         where e.stream_name = u.stream_name and e.revision = u.revision`,
        [links.map((l) => l.stream), links.map((l) => l.revision), links.map((l) => l.prev), links.map((l) => l.hash)],
      );
      chained += rows.length;
      const last = rows[rows.length - 1]!;
      after = [last.stream_name, last.revision];
    }
    return { events: chained, streams: streams.size };
  });
  if (events > 0)
    logger?.warn(
      { migration: 'hash_chain', events, streams },
      `hash chain migration: chained ${events} event(s) in ${streams} stream(s) written before the hash chain existed`,
    );
  return events;
}

/** The hash an unchained row links to: its predecessor's, or the genesis hash at revision 0. */
async function hashBefore(client: { query: Database['pool']['query'] }, stream: string, revision: string): Promise<string> {
  if (revision === '0') return GENESIS_HASH;
  const { rows } = await client.query<{ hash: string | null }>(
    `select encode(hash, 'hex') as hash from es_events where stream_name = $1 and revision = $2::bigint - 1`,
    [stream, revision],
  );
  return rows[0]?.hash ?? GENESIS_HASH;
}
