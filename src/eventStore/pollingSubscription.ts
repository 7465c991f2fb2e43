/**
 * Catch-up-then-live for stores read by polling (PostgreSQL, PGlite): read pages until the log is
 * exhausted, then sleep until a local append wakes us or the poll interval passes (appends made by
 * other processes, and transactions that commit out of order, become visible that way).
 */
import type { EventEmitter } from 'node:events';
import { createWakeableSleep } from '../shared/wakeableSleep.js';
import type { Position, ReadAllOptions, RecordedEvent, SubscribeOptions, Subscription } from './eventStore.js';

type Options = SubscribeOptions & {
  readAll(options: ReadAllOptions): Promise<RecordedEvent[]>;
  pollIntervalMs: number;
  appended: EventEmitter;
};

const MAX_BACKOFF_MS = 5_000;

export function runSubscriptionLoop({ after, batchSize = 500, onEvents, onError, onRecovered, readAll, pollIntervalMs, appended }: Options): Subscription {
  let stopped = false;
  const { sleep: pause, wake } = createWakeableSleep();
  // Remembers an append that arrived while we were reading, so it is not slept through.
  let appendedSinceRead = false;
  const onAppended = () => {
    appendedSinceRead = true;
    wake();
  };
  appended.on('appended', onAppended);

  const loop = (async () => {
    let position: Position | null = after;
    let failures = 0;
    while (!stopped) {
      try {
        appendedSinceRead = false;
        const events = await readAll({ after: position, maxCount: batchSize });
        if (stopped) break;
        if (failures > 0) onRecovered?.();
        if (events.length > 0) {
          await onEvents(events);
          position = events[events.length - 1]!.position;
          failures = 0;
          // A full page means more may be waiting; a short one means we are at the head for now.
          if (events.length === batchSize) continue;
        }
        failures = 0;
        if (!appendedSinceRead) await pause(pollIntervalMs);
      } catch (error) {
        onError?.(error);
        failures += 1;
        if (!stopped) await pause(Math.min(MAX_BACKOFF_MS, 50 * 2 ** failures));
      }
    }
  })();

  return {
    async stop() {
      stopped = true;
      wake();
      await loop;
      appended.off('appended', onAppended);
    },
  };
}
