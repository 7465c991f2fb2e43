/**
 * `cli verify --history`: the store's own history through the same verifier as an exported file
 * (verifyHistory.ts). On PostgreSQL/PGlite the database builds the history lines itself (the export's
 * SQL) in one snapshot, and afterwards every stream's revision in es_streams is compared with where its
 * events end — a deleted tail shows there even before an anchor covers it.
 */
import { PassThrough } from 'node:stream';
import { to as copyTo } from 'pg-copy-streams';
import type { JWTVerifyGetKey } from 'jose';
import type { Database } from '../database/database.js';
import type { EventStore } from '../eventStore/eventStore.js';
import { exportHistory } from '../queries/exportHistory.js';
import { RAW_CSV, VERIFY_LINE_SQL } from './postgresHistory.js';
import { linesOf, verifyHistoryLines, type HistoryProblem, type HistoryVerification } from './verifyHistory.js';

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
    const result = await verifyHistoryLines(linesOf(input.chunks), options);
    await input.drain();
    await exported;
    return result;
  }
  return stores.database.withTransaction(async (client) => {
    await client.query('set transaction isolation level repeatable read');
    // Every committed event of the snapshot, in log order (not only those below the xmin horizon, so the
    // stream table read in the same snapshot agrees with it).
    const source = client.query(copyTo(`copy (select ${VERIFY_LINE_SQL} from es_events order by transaction_id, global_position) to stdout with ${RAW_CSV}`));
    const input = detachable<Buffer>(source);
    const result = await verifyHistoryLines(linesOf(input.chunks), { ...options, hashesCheckedBySource: true });
    await input.drain();
    if (!result.problem) result.problem = await compareStreamTable(client, result.heads);
    return result;
  });
}

type Heads = Awaited<ReturnType<typeof verifyHistoryLines>>['heads'];

async function compareStreamTable(client: { query: Database['pool']['query'] }, heads: Heads): Promise<HistoryProblem | null> {
  const { rows } = await client.query<{ stream_name: string; revision: string }>('select stream_name, revision from es_streams order by stream_name');
  const problem = (stream: string, revision: number | null, message: string): HistoryProblem => ({ line: 0, stream, revision, eventId: null, message });
  let listed = 0;
  for (const row of rows) {
    const head = heads.get(row.stream_name);
    const revision = Number(row.revision);
    if (!head) return problem(row.stream_name, revision, `the stream table says revision ${revision}, but the history has no event of this stream`);
    listed += 1;
    if (head.revision !== revision)
      return problem(
        row.stream_name,
        head.revision,
        `the stream table's head is revision ${revision}, but its events end at revision ${head.revision}` +
          (revision > head.revision ? ': events were removed from its tail' : ': events were added behind the store'),
      );
  }
  if (listed !== heads.size) {
    const missing = [...heads.keys()].find((stream) => !rows.some((r) => r.stream_name === stream))!;
    return problem(missing, heads.get(missing)!.revision, 'the stream has events but no row in the stream table');
  }
  return null;
}
