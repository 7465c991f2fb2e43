/**
 * `cli verify --history`: the store's own history through the same verifier as an exported file
 * (verifyHistory.ts). On PostgreSQL/PGlite the database builds the history lines itself (the export's
 * SQL) in one snapshot, and afterwards every stream's revision in es_streams is compared with where its
 * events end — a deleted tail shows there even before an anchor covers it. On a PostgreSQL server the
 * hashes are recomputed on a second connection sharing the snapshot, beside the links in log order.
 */
import { PassThrough } from 'node:stream';
import type { PoolClient } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { JWTVerifyGetKey } from 'jose';
import type { Database } from '../database/database.js';
import type { EventStore } from '../eventStore/eventStore.js';
import { STREAM_ORDER_PLAN } from '../eventStore/postgresEventStore.js';
import { exportHistory } from '../queries/exportHistory.js';
import { HASH_CHECK_SQL, LINK_LINE_SQL, RAW_CSV, VERIFY_LINE_SQL } from './postgresHistory.js';
import { lineBatches } from './lineBatches.js';
import { verifyHistoryLines, type HistoryProblem, type HistoryVerification } from './verifyHistory.js';

export type StoredHistoryOptions = { anchorKeys: JWTVerifyGetKey | null; onProgress?: (n: number) => void };

/**
 * The stream's chunks for the verifier, whose early stop must not destroy the stream (that aborts the
 * COPY mid-transaction); `drain` then reads what is left, so the producer finishes normally.
 */
function detachable<T>(input: AsyncIterable<T>) {
  const iterator = input[Symbol.asyncIterator]();
  return {
    chunks: { [Symbol.asyncIterator]: () => ({ next: () => iterator.next() }) } as AsyncIterable<T>,
    async drain() {
      while (!(await iterator.next()).done);
    },
  };
}

export async function verifyStoredHistory(stores: { eventStore: EventStore; database: Database }, options: StoredHistoryOptions): Promise<HistoryVerification> {
  if (stores.eventStore.kind === 'eventstoredb') {
    const out = new PassThrough();
    const exported = exportHistory(stores, out).finally(() => out.end());
    const input = detachable<Buffer>(out);
    const result = await verifyHistoryLines(lineBatches(input.chunks), options);
    await input.drain();
    await exported;
    return result;
  }
  const { database } = stores;
  return database.withTransaction(async (client) => {
    await client.query('set transaction isolation level repeatable read');
    // In log order straight off the index, so lines flow while the verifier works: with a sort, the
    // database computed and sorted every line (spilling to disk) before sending the first, and the
    // verifier waited for all of it before it could start.
    await client.query(STREAM_ORDER_PLAN);
    // Every committed event of the snapshot, in log order (not only those below the xmin horizon, so the
    // stream table read in the same snapshot agrees with it).
    const ordered = async (line: string) => {
      const source = client.query(copyTo(`copy (select ${line} from es_events order by transaction_id, global_position) to stdout with ${RAW_CSV}`));
      const input = detachable<Buffer>(source);
      const verified = await verifyHistoryLines(lineBatches(input.chunks), { ...options, hashesCheckedBySource: true });
      await input.drain();
      return verified;
    };
    const check = database.kind === 'postgres' ? await hashCheckBeside(database, client) : null;
    let result: HistoryVerification & { heads: Heads };
    if (check) {
      // The links in log order here, the hashes on the second connection at the same time (two backends
      // on two cores; reading the event data in index order alone cost the database four times the
      // links' read). A history with any hash the database cannot confirm — a changed event, a legacy
      // row whose stored text is not canonical — is read again in the one-pass form, which names it.
      result = await ordered(LINK_LINE_SQL);
      if ((await check.unconfirmed) > 0) result = await ordered(VERIFY_LINE_SQL);
    } else result = await ordered(VERIFY_LINE_SQL);
    if (!result.problem) {
      const table = detachable<Buffer>(client.query(copyTo(`copy (${STREAM_TABLE_SQL}) to stdout with ${RAW_CSV}`)));
      result.problem = await compareStreamTable(lineBatches(table.chunks), result.heads);
      await table.drain();
    }
    return result;
  });
}

/**
 * Starts HASH_CHECK_SQL on a second connection in `client`'s snapshot (exported and imported, so both
 * see the same rows), for the number of unconfirmed hashes (wrapped: awaiting this must not wait for it).
 */
async function hashCheckBeside(database: Database, client: PoolClient): Promise<{ unconfirmed: Promise<number> }> {
  // Not in a savepoint (a subtransaction cannot export its snapshot); a standby can, from PostgreSQL 10.
  const snapshot = (await client.query<{ id: string }>('select pg_export_snapshot() as id')).rows[0]!.id;
  const beside = await database.pool.connect();
  const run = async () => {
    await beside.query('begin isolation level repeatable read');
    await beside.query(`set transaction snapshot '${snapshot}'`);
    // One backend: parallel workers would take the cores the log-order read and the verifier need.
    await beside.query('set local max_parallel_workers_per_gather = 0');
    const { rows } = await beside.query<{ unconfirmed: number }>(HASH_CHECK_SQL);
    await beside.query('commit');
    return rows[0]!.unconfirmed;
  };
  const done = run();
  done.then(
    () => beside.release(),
    (error: unknown) => beside.release(error instanceof Error ? error : true),
  );
  return { unconfirmed: done };
}

type Heads = Awaited<ReturnType<typeof verifyHistoryLines>>['heads'];

/** The stream table as lines `revision<TAB>"stream"`, streamed (a row object per stream would not fit a national registry). */
const STREAM_TABLE_SQL = `select revision || e'\\t' || to_json(stream_name)::text from es_streams order by stream_name`;

async function compareStreamTable(table: AsyncIterable<string[]>, heads: Heads): Promise<HistoryProblem | null> {
  const problem = (stream: string, revision: number | null, message: string): HistoryProblem => ({ line: 0, stream, revision, eventId: null, message });
  const listed = new Uint8Array(heads.size);
  for await (const batch of table)
    for (const line of batch) {
      const tab = line.indexOf('\t');
      const revision = Number(line.slice(0, tab));
      const stream = JSON.parse(line.slice(tab + 1)) as string;
      const index = heads.indexOf(stream);
      if (index === undefined) return problem(stream, revision, `the stream table says revision ${revision}, but the history has no event of this stream`);
      listed[index] = 1;
      const head = heads.revision(index);
      if (head !== revision)
        return problem(
          stream,
          head,
          `the stream table's head is revision ${revision}, but its events end at revision ${head}` +
            (revision > head ? ': events were removed from its tail' : ': events were added behind the store'),
        );
    }
  const missing = listed.indexOf(0);
  if (missing !== -1) return problem(heads.name(missing), heads.revision(missing), 'the stream has events but no row in the stream table');
  return null;
}
