/**
 * Runs one projection: one active instance across processes (advisory lock; the others stand by and
 * retry), catch-up from the stored checkpoint then live, in batches. `waitFor` lets a command's job
 * finish only once the read model shows its events.
 */
import type { Database, SessionLock } from '../database/database.js';
import { isAtOrPast, type EventStore, type Position, type Subscription } from '../eventStore/eventStore.js';
import type { Logger } from '../logger.js';
import type { Projection } from './projection.js';

export type ProjectionStatus = { name: string; active: boolean; checkpoint: Position | null };

export type ProjectionRunner = {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves once the projection has handled `position`; rejects after `timeoutMs`. */
  waitFor(position: Position, timeoutMs: number): Promise<void>;
  status(): Promise<ProjectionStatus>;
  /** Forget the read model and replay the whole log (this instance must be the active one). */
  rebuild(): Promise<void>;
};

export class ProjectionTimeoutError extends Error {
  constructor(name: string, position: Position) {
    super(`Projection ${name} did not reach ${position} in time`);
  }
}

type Options = {
  store: EventStore;
  database: Database;
  projection: Projection;
  logger: Logger;
  batchSize?: number;
  standbyRetryMs?: number;
};

export function createProjectionRunner({ store, database, projection, logger, batchSize = 500, standbyRetryMs = 2_000 }: Options): ProjectionRunner {
  const log = logger.child({ projection: projection.name });
  let lock: SessionLock | null = null;
  let subscription: Subscription | null = null;
  let checkpoint: Position | null = null;
  let running = false;
  let standbyTimer: NodeJS.Timeout | null = null;
  let restarting: Promise<void> | null = null;
  const waiters = new Set<{ position: Position; resolve: () => void }>();

  const settleWaiters = () => {
    for (const waiter of waiters) {
      if (isAtOrPast(store, checkpoint, waiter.position)) {
        waiters.delete(waiter);
        waiter.resolve();
      }
    }
  };

  async function subscribeFromStoredCheckpoint() {
    checkpoint = await projection.readCheckpoint();
    settleWaiters();
    subscription = store.subscribe({
      after: checkpoint,
      batchSize,
      onEvents: async (events) => {
        const to = events[events.length - 1]!.position;
        try {
          await projection.handle(events, { from: checkpoint, to });
        } catch (error) {
          // Our in-memory checkpoint may be stale (e.g. a rebuild elsewhere): start over from the stored one.
          if (!restarting) restarting = restartSubscription().finally(() => (restarting = null));
          throw error;
        }
        checkpoint = to;
        settleWaiters();
      },
      onError: (error) => log.error({ err: error }, 'projection batch failed; retrying'),
    });
  }

  async function restartSubscription() {
    const current = subscription;
    subscription = null;
    await new Promise((resolve) => setTimeout(resolve, 200));
    await current?.stop();
    if (running && lock) await subscribeFromStoredCheckpoint();
  }

  async function tryBecomeActive(): Promise<void> {
    standbyTimer = null;
    if (!running) return;
    try {
      lock = await database.tryLock(`projection:${projection.name}`);
    } catch (error) {
      log.error({ err: error }, 'could not take the projection lock');
    }
    if (!lock) {
      standbyTimer = setTimeout(() => void tryBecomeActive(), standbyRetryMs);
      return;
    }
    log.info('projection active');
    await subscribeFromStoredCheckpoint();
  }

  return {
    name: projection.name,

    async start() {
      if (running) return;
      running = true;
      await tryBecomeActive();
    },

    async stop() {
      running = false;
      if (standbyTimer) clearTimeout(standbyTimer);
      await restarting;
      await subscription?.stop();
      subscription = null;
      await lock?.release();
      lock = null;
    },

    async waitFor(position, timeoutMs) {
      if (isAtOrPast(store, checkpoint, position)) return;
      await new Promise<void>((resolve, reject) => {
        const waiter = { position, resolve: () => finish(resolve) };
        // Standby instances learn the active one's progress from the stored checkpoint.
        const poll = setInterval(() => {
          if (lock) return;
          projection
            .readCheckpoint()
            .then((stored) => isAtOrPast(store, stored, position) && waiter.resolve())
            .catch(() => undefined);
        }, 50);
        const timer = setTimeout(() => finish(() => reject(new ProjectionTimeoutError(projection.name, position))), timeoutMs);
        function finish(settle: () => void) {
          clearInterval(poll);
          clearTimeout(timer);
          waiters.delete(waiter);
          settle();
        }
        waiters.add(waiter);
        settleWaiters();
      });
    },

    async status() {
      return { name: projection.name, active: lock !== null, checkpoint: lock ? checkpoint : await projection.readCheckpoint() };
    },

    async rebuild() {
      if (!lock) throw new Error(`Projection ${projection.name} is active in another process; stop that one first`);
      await subscription?.stop();
      subscription = null;
      await projection.reset();
      log.info('projection reset; replaying from the beginning');
      await subscribeFromStoredCheckpoint();
    },
  };
}
