/**
 * Keeps this process's reference cache current: it reads the change log from where it last read,
 * when told (a NOTIFY from whichever instance or CLI changed something, a reconnect of the listening
 * connection after a loss) and every `pollMs` anyway, so a lost message costs at most one interval.
 * The log is durable and its sequence numbers commit in order (one writer at a time), so reading it
 * on from the last number seen misses nothing.
 */
import type { Database } from '../database/database.js';
import type { Logger } from '../logger.js';
import { createOutage } from '../shared/outage.js';
import { REFERENCE_CHANNEL } from './postgresReferenceStore.js';
import type { ReferenceCache } from './referenceCache.js';
import type { ReferenceStore } from './referenceStore.js';

/** Past this many changes at once (a bulk load) the cache is dropped whole instead. */
const PAGE = 1_000;

export type ReferenceFollower = { catchUp(): Promise<void>; close(): Promise<void> };

export async function followReferenceChanges({
  store,
  database,
  cache,
  pollMs,
  logger,
}: {
  store: ReferenceStore;
  database: Database;
  cache: ReferenceCache;
  pollMs: number;
  logger: Logger;
}): Promise<ReferenceFollower> {
  const outage = createOutage(logger.child({ component: 'reference_changes' }), 'reference change log');
  let seen = await store.head();
  let running: Promise<void> | null = null;
  let again = false;

  async function readOn(): Promise<void> {
    do {
      again = false;
      for (;;) {
        const changes = await store.changesSince(seen, PAGE);
        if (changes.length === 0) break;
        if (changes.length === PAGE) {
          // The head first: whatever commits after it is read next time, whatever before is dropped now.
          const head = await store.head();
          cache.clear();
          seen = head;
          break;
        }
        cache.invalidate(changes);
        seen = changes[changes.length - 1]!.seq;
      }
    } while (again);
  }

  /** Reads the log up to now (a change made before the call is in the cache's view after it). */
  function catchUp(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    const run = readOn()
      .then(() => void outage.recovered())
      .catch((error: unknown) => void outage.failed(error))
      .finally(() => void (running = null));
    running = run;
    return run;
  }

  const subscription = await database.listen(REFERENCE_CHANNEL, () => void catchUp(), { onReconnect: () => void catchUp() });
  const timer = setInterval(() => void catchUp(), pollMs);
  timer.unref();
  return {
    catchUp,
    async close() {
      clearInterval(timer);
      await subscription.close();
      await running;
    },
  };
}
