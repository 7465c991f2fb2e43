/**
 * Catch-up-then-live for stores read by polling (PostgreSQL, PGlite): read pages until the log is
 * exhausted, then sleep until a local append wakes us or the poll interval passes (appends made by
 * other processes, and transactions that commit out of order, become visible that way).
 */
import type { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { createWakeableSleep } from '../shared/wakeableSleep.js';
import type { Position, ReadAllOptions, RecordedEvent, SubscribeOptions, Subscription } from './eventStore.js';

type Options = SubscribeOptions & {
  readAll(options: ReadAllOptions): Promise<RecordedEvent[]>;
  pollIntervalMs: number;
  appended: EventEmitter;
  /**
   * After a local append, wait this long before reading: the commands landing meanwhile join the same
   * batch (one read and one projection transaction for several commands, not one each), and the
   * request that appended answers before the projections compete with it for the CPU.
   */
  batchWindowMs?: number;
};

const MAX_BACKOFF_MS = 5_000;

export function runSubscriptionLoop({
  after,
  batchSize = 500,
  onEvents,
  onError,
  onRecovered,
  readAll,
  pollIntervalMs,
  appended,
  batchWindowMs = 0,
}: Options): Subscription {
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
        if (appendedSinceRead && batchWindowMs > 0 && !stopped) await delay(batchWindowMs);
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
