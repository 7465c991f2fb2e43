/**
 * Runs one projection: one active instance across processes (advisory lock; the others stand by and
 * retry), catch-up from the stored checkpoint then live, in batches. `waitFor` lets a command's job
 * finish only once the read model shows its events. Losing the database is survived: a lost lock
 * connection stops projecting until the lock is held again (never two active instances; the
 * checkpoint's compare-and-set guards the batch that was in flight), and failures back off.
 */
import type { Database, SessionLock } from '../database/database.js';
import { isAtOrPast, type EventStore, type Position, type RecordedEvent, type Subscription } from '../eventStore/eventStore.js';
import type { Logger } from '../logger.js';
import { createOutage } from '../shared/outage.js';
import type { Projection } from './projection.js';
import { assertCheckpointNotAhead } from './checkpointSanity.js';
import type { LogFeed } from './logFeed.js';

export type ProjectionStatus = { name: string; active: boolean; checkpoint: Position | null };

export type ProjectionRunner = {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves once the projection has handled `position`; rejects after `timeoutMs`. */
  waitFor(position: Position, timeoutMs: number): Promise<void>;
  status(): Promise<ProjectionStatus>;
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
  /** The log reader shared by the process's projections (createLogFeed); default: a reader of its own. */
  feed?: LogFeed;
  batchSize?: number;
  standbyRetryMs?: number;
  /** A checkpoint kept in memory (batches without an event of this projection) is stored at the latest this much later. */
  checkpointEveryMs?: number;
  /** …or once no batch came for this long. */
  idleStoreMs?: number;
  /** On stop, how long the projection may take to reach the head of the log. */
  drainTimeoutMs?: number;
};

export function createProjectionRunner({
  store,
  database,
  projection,
  logger,
  feed = store,
  batchSize = 500,
  standbyRetryMs = 2_000,
  checkpointEveryMs = 5_000,
  idleStoreMs = 50,
  drainTimeoutMs = 5_000,
}: Options): ProjectionRunner {
  const log = logger.child({ projection: projection.name });
  const outage = createOutage(log, 'projection', { minMs: 200, maxMs: 5_000 });
  let lock: SessionLock | null = null;
  let subscription: Subscription | null = null;
  let checkpoint: Position | null = null;
  // What the database holds (the `from` of the next write's compare-and-set), and since when `checkpoint` is ahead of it.
  let stored: Position | null = null;
  let aheadSince: number | null = null;
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
    const fromStore = await projection.readCheckpoint();
    // Never follow the log from past its head (the store was wiped or replaced): stand by and say why.
    await assertCheckpointNotAhead(store, projection.name, fromStore);
    checkpoint = stored = fromStore;
    aheadSince = null;
    settleWaiters();
    subscription = feed.subscribe({
      after: checkpoint,
      batchSize,
      onEvents: (events) => serially(() => handleBatch(events)),
      onError: (error) => void outage.failed(error),
      onRecovered: () => outage.recovered(),
    });
  }

  // Batches and the idle store of a kept checkpoint never overlap (each is a compare-and-set on `stored`).
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work);
    queue = run.catch(() => undefined);
    return run;
  };
  let idleTimer: NodeJS.Timeout | null = null;

  async function handleBatch(events: RecordedEvent[]) {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = null;
    const to = events[events.length - 1]!.position;
    // A batch with nothing of ours moves the checkpoint in memory only (no transaction for it), and
    // so may one whose rows were written inline already; it is stored with the next write, at the
    // latest checkpointEveryMs later, once the log goes quiet (idleStoreMs), or when the runner stops.
    const ours = projection.relevant ? events.filter((e) => projection.relevant!(e)) : events;
    const due = aheadSince !== null && Date.now() - aheadSince >= checkpointEveryMs;
    if (ours.length > 0 || due) {
      try {
        const wrote = await projection.handle(ours, { from: stored, to, lazy: !due });
        if (wrote === false) aheadSince ??= Date.now();
        else [stored, aheadSince] = [to, null];
      } catch (error) {
        // Our in-memory checkpoint may be stale (e.g. a rebuild elsewhere): start over from the stored one.
        if (!restarting) restarting = restartSubscription().finally(() => (restarting = null));
        throw error;
      }
    } else aheadSince ??= Date.now();
    checkpoint = to;
    outage.recovered();
    settleWaiters();
    if (aheadSince !== null && events.length < batchSize) idleTimer = setTimeout(() => void serially(storeWhenIdle), idleStoreMs);
  }

  /** The log went quiet with our checkpoint ahead of the stored one: store it (lag, verify and standbys read it). */
  async function storeWhenIdle() {
    idleTimer = null;
    if (!lock || !subscription || aheadSince === null || checkpoint === null) return;
    const to = checkpoint;
    try {
      await projection.handle([], { from: stored, to });
      [stored, aheadSince] = [to, null];
    } catch (error) {
      // As after a failed batch: the stored checkpoint may have moved (a blue/green swap elsewhere), so
      // start over from it; nothing else would wake a projection whose log has gone quiet.
      log.warn({ err: error }, 'could not store the checkpoint; starting over from the stored one');
      if (!restarting) restarting = restartSubscription().finally(() => (restarting = null));
    }
  }

  /** Stores a checkpoint kept only in memory (the subscription is stopped: nothing else writes it). */
  async function storeKeptCheckpoint() {
    if (aheadSince === null || checkpoint === null) return;
    try {
      await projection.handle([], { from: stored, to: checkpoint });
      [stored, aheadSince] = [checkpoint, null];
    } catch (error) {
      log.warn({ err: error }, 'could not store the checkpoint on stop; the events after the stored one are read again');
    }
  }

  async function restartSubscription() {
    const current = subscription;
    subscription = null;
    await new Promise((resolve) => setTimeout(resolve, 200));
    await current?.stop();
    if (!running || !lock) return;
    try {
      await subscribeFromStoredCheckpoint();
    } catch (error) {
      await standDown(error);
    }
  }

  /** Gives up the active role (lock lost, or the database failed us) and retries later. */
  async function standDown(error: unknown) {
    const held = lock;
    lock = null;
    const current = subscription;
    subscription = null;
    await current?.stop();
    await held?.release();
    scheduleTry(outage.failed(error));
  }

  function scheduleTry(delayMs: number) {
    if (running && !standbyTimer) standbyTimer = setTimeout(() => void tryBecomeActive(), delayMs);
  }

  async function tryBecomeActive(): Promise<void> {
    standbyTimer = null;
    if (!running || lock) return;
    let acquired: SessionLock | null;
    try {
      acquired = await database.tryLock(`projection:${projection.name}`);
    } catch (error) {
      return scheduleTry(outage.failed(error));
    }
    if (!acquired) return scheduleTry(standbyRetryMs);
    if (!running) return void (await acquired.release());
    lock = acquired;
    void acquired.lost.then(() => {
      if (lock !== acquired) return;
      log.warn('projection lock connection lost; standing by until the lock is held again');
      void standDown(new Error('projection lock connection lost'));
    });
    try {
      await subscribeFromStoredCheckpoint();
    } catch (error) {
      return standDown(error);
    }
    outage.recovered();
    log.info('projection active');
  }

  return {
    name: projection.name,

    async start() {
      if (running) return;
      running = true;
      await tryBecomeActive();
    },

    async stop() {
      // Commands write their rows inline before this projection passes their events: catch up to the
      // head first (bounded), so the stored checkpoint covers every row the read model shows.
      if (lock && subscription && running) {
        const head = await store.headPosition().catch(() => null);
        if (head) await this.waitFor(head, drainTimeoutMs).catch(() => undefined);
      }
      running = false;
      if (standbyTimer) clearTimeout(standbyTimer);
      standbyTimer = null;
      await restarting;
      await subscription?.stop();
      subscription = null;
      if (idleTimer) clearTimeout(idleTimer);
      await queue;
      if (lock) await storeKeptCheckpoint();
      const held = lock;
      lock = null;
      await held?.release();
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
  };
}
