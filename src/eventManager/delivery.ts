/**
 * Delivers the event-manager log to EVENT_MANAGER_URL, at least once: POST, and only a 2xx answer
 * marks an entry delivered. Per dispense strictly in order (an entry waits until the one before it is
 * acknowledged); a failure is retried with exponential backoff. The log is durable, so a restart
 * re-sends exactly what was not acknowledged. One deliverer across processes (advisory lock).
 */
import type { Database, SessionLock } from '../database/database.js';
import type { Logger } from '../logger.js';
import { createOutage } from '../shared/outage.js';
import { createWakeableSleep } from '../shared/wakeableSleep.js';
import { eventManagerSchema, type StatusChangeEvent } from './eventManagerLog.js';

export type DeliveryOptions = {
  database: Database;
  url: string;
  logger: Logger;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  timeoutMs?: number;
  pollIntervalMs?: number;
  /** Entities delivered in parallel (each one still in order). */
  concurrency?: number;
};

export type EventManagerDelivery = { start(): Promise<void>; stop(): Promise<void>; wake(): void };

type Due = { seq: string; entity_id: string; payload: StatusChangeEvent; attempts: number };

export async function createEventManagerDelivery({
  database,
  url,
  logger,
  minBackoffMs = 500,
  maxBackoffMs = 60_000,
  timeoutMs = 5_000,
  pollIntervalMs = 250,
  concurrency = 8,
}: DeliveryOptions): Promise<EventManagerDelivery> {
  await database.migrate('event_manager', eventManagerSchema);
  const log = logger.child({ component: 'event_manager_delivery' });
  let running = false;
  let lock: SessionLock | null = null;
  let loop: Promise<void> | null = null;
  const { sleep, wake } = createWakeableSleep();
  const outage = createOutage(log, 'event manager delivery', { minMs: 200, maxMs: 10_000 });

  async function send(entry: Due): Promise<void> {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(entry.payload),
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      await response.body?.cancel();
      await database.pool.query('update event_manager_log set delivered_at = now(), attempts = attempts + 1, last_error = null where seq = $1', [entry.seq]);
    } catch (error) {
      const backoff = Math.min(maxBackoffMs, minBackoffMs * 2 ** entry.attempts);
      const message = error instanceof Error ? error.message : String(error);
      log.warn({ id: entry.payload.id, attempts: entry.attempts + 1, retry_in_ms: backoff, error: message }, 'StatusChangeEvent not delivered');
      await database.pool.query(
        `update event_manager_log set attempts = attempts + 1, last_error = $2, next_attempt_at = now() + make_interval(secs => $3) where seq = $1`,
        [entry.seq, message.slice(0, 500), backoff / 1000],
      );
    }
  }

  /** The oldest undelivered entry of each entity, if it is due. */
  async function dueEntries(): Promise<Due[]> {
    const { rows } = await database.pool.query<Due & { next_attempt_at: Date; now: Date }>(
      `select * from (
         select distinct on (entity_id) seq, entity_id, payload, attempts, next_attempt_at, now() as now
         from event_manager_log where delivered_at is null order by entity_id, seq
       ) heads where next_attempt_at <= now order by seq limit $1`,
      [concurrency * 4],
    );
    return rows;
  }

  async function run() {
    while (running) {
      try {
        if (!lock) {
          const acquired = await database.tryLock('event_manager_delivery');
          if (!acquired) {
            await sleep(2_000);
            continue;
          }
          lock = acquired;
          // Lost with its connection: stop delivering (another process may take over) until held again.
          void acquired.lost.then(() => {
            if (lock === acquired) lock = null;
          });
        }
        const due = await dueEntries();
        for (let i = 0; i < due.length; i += concurrency) await Promise.all(due.slice(i, i + concurrency).map(send));
        outage.recovered();
        if (due.length === 0) await sleep(pollIntervalMs);
      } catch (error) {
        await sleep(outage.failed(error));
      }
    }
  }

  return {
    async start() {
      if (running) return;
      running = true;
      loop = run();
    },
    async stop() {
      running = false;
      wake();
      await loop;
      const held = lock;
      lock = null;
      await held?.release();
    },
    wake,
  };
}
