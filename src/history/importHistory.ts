/**
 * `cli import`: loads an exported history into an empty event store, keeping event ids, stream
 * revisions, order and metadata. Every event must be one the projections can apply (eventChecks.ts).
 * PostgreSQL/PGlite load in one transaction (a refused line rolls it back); another store
 * (EventStoreDB) gets batched appends per stream with exact expected revisions, after a first pass over
 * the whole file with every check of the second (its appends cannot be rolled back), so a refused file
 * writes nothing there either. A re-run after a failure of the store itself refuses instead of
 * duplicating (the store is then not empty: start from an empty one).
 */
import type { Database } from '../database/database.js';
import type { EventStore, EventToAppend } from '../eventStore/eventStore.js';
import { GENESIS_HASH } from '../eventStore/hashChain.js';
import { fromHistoryLine, HistoryFileError } from './historyLine.js';
import { importHistoryInto, type NumberedLine } from './postgresHistory.js';
import { checkHistoryChain } from './historyChain.js';
import { domainEventCheck, type EventCheck } from './eventChecks.js';

/** The lines to load: a function that reads them from the start each time it is called (EventStoreDB reads them twice). */
export type HistorySource = () => AsyncIterable<NumberedLine>;

type ImportOptions = { force?: boolean; onProgress?: (n: number) => void; check?: EventCheck };

export async function importHistory(
  stores: { eventStore: EventStore; database: Database },
  source: HistorySource,
  options: ImportOptions = {},
): Promise<number> {
  if (stores.eventStore.kind !== 'eventstoredb') return importHistoryInto(stores.database, source(), options);
  if (!options.force && (await stores.eventStore.headPosition()) !== null)
    throw new HistoryFileError(null, 'the event store is not empty (import into an empty store, or pass --force)');
  await importByAppends(stores.eventStore, source(), { ...options, dryRun: true });
  return importByAppends(stores.eventStore, source(), options);
}

async function importByAppends(
  store: EventStore,
  lines: AsyncIterable<NumberedLine>,
  { onProgress, check = domainEventCheck, dryRun = false }: ImportOptions & { dryRun?: boolean },
) {
  const streams = new Map<string, bigint>();
  let pending: { stream: string; first: bigint; events: EventToAppend[]; firstLine: number } | null = null;
  let count = 0;
  const flush = async () => {
    if (!pending) return;
    const { stream, first, events, firstLine } = pending;
    pending = null;
    if (dryRun) return;
    try {
      await store.appendToStream(stream, events, { expectedRevision: first === 0n ? 'no_stream' : first - 1n });
    } catch (error) {
      throw new HistoryFileError(firstLine, `append to ${stream} refused: ${(error as Error).message}`);
    }
    count += events.length;
    onProgress?.(events.length);
  };
  // The adapter chains the appended events itself; a file's own links are checked on the way.
  const heads = new Map<string, string>();
  for await (const { line, number } of checkHistoryChain(lines)) {
    const refused = check(line);
    if (refused !== null) throw new HistoryFileError(number, refused);
    const event = fromHistoryLine(line);
    const expected = (streams.get(event.streamName) ?? -1n) + 1n;
    if (event.revision !== expected) throw new HistoryFileError(number, `stream ${event.streamName}: revision ${event.revision}, expected ${expected}`);
    const previous = heads.get(event.streamName) ?? GENESIS_HASH;
    if (line.prev_hash !== previous)
      throw new HistoryFileError(
        number,
        `stream ${event.streamName} revision ${event.revision} (event ${event.metadata.eventId}): prev_hash ${line.prev_hash} does not link to the previous event's hash ${previous}`,
      );
    streams.set(event.streamName, event.revision);
    heads.set(event.streamName, line.hash);
    if (pending && (pending.stream !== event.streamName || pending.events.length >= 500)) await flush();
    pending ??= { stream: event.streamName, first: event.revision, events: [], firstLine: number };
    if (!dryRun) pending.events.push({ type: event.type, data: event.data, metadata: event.metadata });
  }
  await flush();
  return count;
}
