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
import type { DeadLetters } from './deadLetters.js';
import { PoisonEventError } from './poison.js';

/** Where a halted projection waits (ON_POISON_EVENT=stop): the dead letter of the event it cannot apply. */
export type ProjectionHalt = { dead_letter_id: string; event_id: string; position: Position };
export type ProjectionStatus = { name: string; active: boolean; checkpoint: Position | null; halted: ProjectionHalt | null };

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
  /**
   * The dead letters the projection (behind withDeadLetters) records a poison event in. With them, a
   * projection halted at one asks every `poisonPollMs` whether an operator retried or skipped it.
   */
  deadLetters?: DeadLetters;
  poisonPollMs?: number;
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
  deadLetters,
  poisonPollMs = 1_000,
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
  // Halted at a poison event (ON_POISON_EVENT=stop): no subscription, the lock kept, the dead letter polled.
  let halted: ProjectionHalt | null = null;
  let haltTimer: NodeJS.Timeout | null = null;
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
    // Batches the subscription delivered before it stopped, once halted: the checkpoint stays before the poison event.
    if (halted) return;
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
        if (error instanceof PoisonEventError && error.letter?.status === 'halted' && deadLetters) return haltAt(error, error.letter.id, events);
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

  /**
   * ON_POISON_EVENT=stop: the projection (its guard) applied everything before the event and recorded
   * it; stop reading the log here, keep the lock (a standby would only halt at it too), and wait for an
   * operator to retry or skip it. The other projections, commands and queries go on.
   */
  async function haltAt(poison: PoisonEventError, deadLetterId: string, batch: RecordedEvent[]) {
    halted = { dead_letter_id: deadLetterId, event_id: poison.event.metadata.eventId, position: poison.event.position };
    const current = subscription;
    subscription = null;
    // Not awaited: this runs inside the subscription's own delivery.
    void current?.stop().catch(() => undefined);
    try {
      // It waits right before the event: what precedes it in the batch was applied by the guard or is
      // not this projection's. The guard may have stored that checkpoint already; else it is kept in
      // memory (and stored on stop), as after any batch without an event of ours.
      const index = batch.indexOf(poison.event);
      const before = index > 0 ? batch[index - 1]!.position : checkpoint;
      stored = await projection.readCheckpoint();
      if (before === null || isAtOrPast(store, stored, before)) [checkpoint, aheadSince] = [stored, null];
      else [checkpoint, aheadSince] = [before, aheadSince ?? Date.now()];
    } catch {
      // The resume reads it again.
    }
    outage.recovered();
    settleWaiters();
    scheduleHaltCheck();
  }

  function scheduleHaltCheck() {
    if (running && halted && !haltTimer) haltTimer = setTimeout(() => void checkHalt(), poisonPollMs);
  }

  /** Resumes once the operator retried or skipped the event (from this process or another). */
  async function checkHalt() {
    haltTimer = null;
    if (!running || !halted || !deadLetters || !lock) return;
    try {
      const letter = await deadLetters.get(halted.dead_letter_id);
      if (letter && letter.status === 'halted') return scheduleHaltCheck();
      await deadLetters.reload();
      log.info({ dead_letter_id: halted.dead_letter_id, status: letter?.status ?? 'gone' }, 'projection resumes after its halted event');
      halted = null;
      await subscribeFromStoredCheckpoint();
    } catch (error) {
      log.warn({ err: error }, 'could not check the halted event; trying again');
      if (halted) scheduleHaltCheck();
      else if (!subscription && !restarting) restarting = restartSubscription().finally(() => (restarting = null));
    }
  }

  function clearHalt() {
    halted = null;
    if (haltTimer) clearTimeout(haltTimer);
    haltTimer = null;
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
    if (!running || !lock || halted) return;
    try {
      await subscribeFromStoredCheckpoint();
    } catch (error) {
      await standDown(error);
    }
  }

  /** Gives up the active role (lock lost, or the database failed us) and retries later. */
  async function standDown(error: unknown) {
    clearHalt();
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
      // A halted projection does not move: nothing to wait for.
      if (lock && subscription && running && !halted) {
        const head = await store.headPosition().catch(() => null);
        if (head) await this.waitFor(head, drainTimeoutMs).catch(() => undefined);
      }
      running = false;
      clearHalt();
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
      return { name: projection.name, active: lock !== null, checkpoint: lock ? checkpoint : await projection.readCheckpoint(), halted };
    },
  };
}
