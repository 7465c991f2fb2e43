/**
 * `cli import`: loads an exported history into an empty event store, keeping event ids, stream
 * revisions, order and metadata. PostgreSQL/PGlite load in one transaction; another store (EventStoreDB)
 * gets batched appends per stream with exact expected revisions, so a re-run after a failure refuses
 * instead of duplicating (the store is then not empty: start from an empty one).
 */
import type { Database } from '../database/database.js';
import type { EventStore, EventToAppend } from '../eventStore/eventStore.js';
import { GENESIS_HASH } from '../eventStore/hashChain.js';
import { fromHistoryLine, HistoryFileError } from './historyLine.js';
import { importHistoryInto, type NumberedLine } from './postgresHistory.js';
import { checkHistoryChain } from './historyChain.js';

export async function importHistory(
  stores: { eventStore: EventStore; database: Database },
  lines: AsyncIterable<NumberedLine>,
  options: { force?: boolean; onProgress?: (n: number) => void } = {},
): Promise<number> {
  if (stores.eventStore.kind !== 'eventstoredb') return importHistoryInto(stores.database, lines, options);
  return importByAppends(stores.eventStore, lines, options);
}

type ImportOptions = { force?: boolean; onProgress?: (n: number) => void };

async function importByAppends(store: EventStore, lines: AsyncIterable<NumberedLine>, { force = false, onProgress }: ImportOptions) {
  if (!force && (await store.headPosition()) !== null)
    throw new HistoryFileError(null, 'the event store is not empty (import into an empty store, or pass --force)');
  const streams = new Map<string, bigint>();
  let pending: { stream: string; first: bigint; events: EventToAppend[]; firstLine: number } | null = null;
  let count = 0;
  const flush = async () => {
    if (!pending) return;
    const { stream, first, events, firstLine } = pending;
    pending = null;
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
    pending.events.push({ type: event.type, data: event.data, metadata: event.metadata });
  }
  await flush();
  return count;
}
