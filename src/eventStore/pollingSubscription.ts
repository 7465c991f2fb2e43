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

export function runSubscriptionLoop({ after, batchSize = 500, onEvents, onError, readAll, pollIntervalMs, appended }: Options): Subscription {
  let stopped = false;
  const { sleep: pause, wake } = createWakeableSleep();
  appended.on('appended', wake);

  const loop = (async () => {
    let position: Position | null = after;
    let failures = 0;
    while (!stopped) {
      try {
        const events = await readAll({ after: position, maxCount: batchSize });
        if (stopped) break;
        if (events.length > 0) {
          await onEvents(events);
          position = events[events.length - 1]!.position;
          failures = 0;
          continue;
        }
        failures = 0;
        await pause(pollIntervalMs);
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
      appended.off('appended', wake);
    },
  };
}
