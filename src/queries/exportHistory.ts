/**
 * Exports the history as NDJSON (one audit event per line) in constant memory: the log is read in
 * bounded pages and every line waits for the output to drain.
 */
import type { Writable } from 'node:stream';
import type { EventStore, RecordedEvent } from '../eventStore/eventStore.js';
import { auditEventView } from './audit.js';

export type ExportOptions = { stream?: string; from?: string; to?: string; pageSize?: number; onProgress?: (n: number) => void };

async function write(out: Writable, line: string): Promise<void> {
  if (!out.write(line)) await new Promise<void>((resolve, reject) => {
    const onDrain = () => (out.off('error', onError), resolve());
    const onError = (error: Error) => (out.off('drain', onDrain), reject(error));
    out.once('drain', onDrain);
    out.once('error', onError);
  });
}

async function* pages(store: EventStore, { stream, pageSize = 500 }: ExportOptions): AsyncGenerator<RecordedEvent[]> {
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
export async function exportHistory(store: EventStore, out: Writable, options: ExportOptions = {}): Promise<number> {
  const from = options.from ? Date.parse(options.from) : -Infinity;
  const to = options.to ? Date.parse(options.to) : Infinity;
  let written = 0;
  for await (const page of pages(store, options)) {
    for (const event of page) {
      const at = Date.parse(event.metadata.occurredAt);
      if (at < from || at > to) continue;
      await write(out, `${JSON.stringify(auditEventView(event))}\n`);
      written += 1;
    }
    options.onProgress?.(page.length);
  }
  return written;
}
