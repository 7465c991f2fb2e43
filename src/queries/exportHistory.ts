/**
 * Exports the history as NDJSON (one history line per event, see src/history/historyLine.ts) in
 * constant memory: streamed by the database itself on PostgreSQL/PGlite, read in bounded pages
 * elsewhere, every write waiting for the output to drain.
 */
import type { Writable } from 'node:stream';
import type { Database } from '../database/database.js';
import type { EventStore, RecordedEvent } from '../eventStore/eventStore.js';
import { toHistoryLine } from '../history/historyLine.js';
import { copyHistoryOut } from '../history/postgresHistory.js';

export type ExportOptions = { stream?: string; from?: string; to?: string; pageSize?: number; onProgress?: (n: number) => void };

async function write(out: Writable, line: string): Promise<void> {
  if (!out.write(line))
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => (out.off('error', onError), resolve());
      const onError = (error: Error) => (out.off('drain', onDrain), reject(error));
      out.once('drain', onDrain);
      out.once('error', onError);
    });
}

async function* pages(store: EventStore, { stream, pageSize = 1_000 }: ExportOptions): AsyncGenerator<RecordedEvent[]> {
  if (stream) {
    let page: RecordedEvent[] = [];
    for await (const event of store.readStream(stream)) {
      page.push(event);
      if (page.length === pageSize) {
        yield page;
        page = [];
      }
    }
    if (page.length) yield page;
    return;
  }
  let after: string | null = null;
  for (;;) {
    const page = await store.readAll({ after, maxCount: pageSize });
    if (page.length === 0) return;
    yield page;
    after = page[page.length - 1]!.position;
  }
}

/** Returns how many events were written. `from`/`to` bound occurred_at (inclusive). */
export async function exportHistory(stores: { eventStore: EventStore; database: Database }, out: Writable, options: ExportOptions = {}): Promise<number> {
  const { stream, from, to } = options;
  if (stores.eventStore.kind !== 'eventstoredb')
    return copyHistoryOut(stores.database, out, { ...(stream ? { stream } : {}), ...(from ? { from } : {}), ...(to ? { to } : {}) }, options.onProgress);
  const fromMs = from ? Date.parse(from) : -Infinity;
  const toMs = to ? Date.parse(to) : Infinity;
  let written = 0;
  for await (const page of pages(stores.eventStore, options)) {
    for (const event of page) {
      const at = Date.parse(event.metadata.occurredAt);
      if (at < fromMs || at > toMs) continue;
      await write(out, `${JSON.stringify(toHistoryLine(event))}\n`);
      written += 1;
    }
    options.onProgress?.(page.length);
  }
  return written;
}
