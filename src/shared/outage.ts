/**
 * Backoff for background work that depends on a store: exponential, capped, and logged once when an
 * outage starts and once when it ends, not on every retry.
 */
import type { Logger } from '../logger.js';

export type Outage = {
  /** Records a failure; returns how long to wait before the next try. */
  failed(error: unknown): number;
  /** Records a success; logs the end of an outage if there was one. */
  recovered(): void;
  readonly failing: boolean;
};

export function createOutage(log: Logger, what: string, { minMs = 100, maxMs = 5_000 }: { minMs?: number; maxMs?: number } = {}): Outage {
  let failures = 0;
  let since = 0;
  return {
    failed(error) {
      if (failures === 0) {
        since = Date.now();
        log.error({ err: error }, `${what} failed; retrying with backoff until it recovers`);
      }
      failures += 1;
      return Math.min(maxMs, minMs * 2 ** Math.min(failures - 1, 20));
    },
    recovered() {
      if (failures === 0) return;
      log.info({ attempts: failures, down_ms: Date.now() - since }, `${what} recovered`);
      failures = 0;
    },
    get failing() {
      return failures > 0;
    },
  };
}
