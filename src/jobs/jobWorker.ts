/**
 * Runs jobs: claims one, calls the handler registered for its kind, records the outcome.
 * An EsozError is the job's answer (failed with that status). A projection that has not caught up yet,
 * or an unexpected error, gives the job back for a later attempt; after MAX_ATTEMPTS unexpected
 * errors it fails with 500 internal_error; an unreachable store is not the job's fault and never
 * uses up its attempts. While a job runs its lease is renewed (heartbeat), so a crashed process's job
 * is taken over within one lease. Handlers must be idempotent per job id (commands check the
 * causation id of the stream's events), because a job can run again after a crash.
 *
 * Where the stores allow it (`inline`: PostgreSQL/PGlite event store and read models), a job runs at
 * once within the request that accepted it (`runNow`), and its outcome commits in the command's
 * transaction together with the events and the read-model rows: there is nothing to wait for and no
 * queue round trip. The queue stays for what cannot finish there: unexpected errors (retried with
 * back-off), stores that cannot commit together (MongoDB, EventStoreDB), and a stopped worker.
 */
import type { CommandCommit } from '../commands/shared/commandContext.js';
import { EsozError, internalError } from '../domain/shared/esozError.js';
import type { AppendedRevision, AppendResult, StreamAppend, TransactionalWrite } from '../eventStore/eventStore.js';
import type { Logger } from '../logger.js';
import { createWakeableSleep } from '../shared/wakeableSleep.js';
import { ProjectionTimeoutError } from '../projections/projectionRunner.js';
import { createOutage } from '../shared/outage.js';
import { isStoreUnavailable } from '../shared/storeUnavailable.js';
import type { Job, JobLink, JobOutcome, JobStore, NewJob } from './jobStore.js';

/** What a handler may use while it runs a job. */
export type JobRun = {
  /**
   * The commit for the job's command that also records the job processed with `links` (and writes the
   * inline read models) in the command's transaction; undefined where stores cannot commit together,
   * and the handler then waits for the read model itself.
   */
  commit(links: JobLink[]): CommandCommit | undefined;
};
export type JobHandler = (job: Job, run: JobRun) => Promise<{ links: JobLink[] }>;
export type JobHandlers = Record<string, JobHandler>;

/** The event store's atomic append and the writes of the inline projections for it. */
export type InlineCommits = {
  appendAtomically(appends: StreamAppend[], alsoWrite: (revisions: AppendedRevision[]) => TransactionalWrite[]): Promise<AppendResult[]>;
  project(appends: StreamAppend[], revisions: AppendedRevision[]): TransactionalWrite[];
};

const MAX_ATTEMPTS = 5;

export type JobWorker = {
  start(): void;
  stop(): Promise<void>;
  /** Wakes one idle worker loop (a job was queued, here or by another process). */
  wake(): void;
  runOnce(): Promise<boolean>;
  /** Accepts a job: runs it now when it can finish here (returns it finished or failed), else queues it (pending). */
  accept(job: NewJob): Promise<Job>;
};

export function createJobWorker({
  jobs,
  handlers,
  logger,
  concurrency = 2,
  pollIntervalMs = 200,
  inline,
  onQueued,
  onFinished,
}: {
  jobs: JobStore;
  handlers: JobHandlers;
  logger: Logger;
  concurrency?: number;
  pollIntervalMs?: number;
  inline?: InlineCommits;
  /** A job was queued here: tell the other processes (NOTIFY) so an idle one may take it. */
  onQueued?: () => void;
  /** A job ended here (`queued`: it came from the queue, so a waiter may be in another process). */
  onFinished?: (job: Job, how: { queued: boolean }) => void;
}): JobWorker {
  const ended = (job: Job, outcome: JobOutcome, queued: boolean): Job => {
    const done: Job = {
      ...job,
      status: outcome.status,
      statusCode: outcome.statusCode,
      links: outcome.status === 'processed' ? outcome.links : null,
      error: outcome.status === 'failed' ? outcome.error : null,
      updatedAt: new Date().toISOString(),
    };
    onFinished?.(done, { queued });
    return done;
  };
  let running = false;
  const { sleep, wake, wakeOne } = createWakeableSleep();
  const loops: Promise<void>[] = [];
  const outage = createOutage(logger.child({ component: 'job_worker' }), 'job worker', { minMs: 200, maxMs: 5_000 });

  /** A commit recording `job`'s outcome in the command's transaction; `committed()` tells whether one did. */
  function inlineRun(job: Job, claimed: boolean) {
    let committed = false;
    const run: JobRun = {
      commit: (links) =>
        inline &&
        (async (appends) => {
          const outcome = jobs.outcomeWrite(job, { status: 'processed', statusCode: 200, links }, { claimed });
          const results = await inline.appendAtomically(appends, (done) => [...inline.project(appends, done), outcome]);
          committed = true;
          return results;
        }),
    };
    return { run, committed: () => committed };
  }

  /** Renews the lease a few times per lease period until the job is done. */
  function heartbeat(job: Job & { leaseId: string }, log: Logger): () => void {
    const timer = setInterval(
      () => {
        jobs.renew(job.id, job.leaseId).then(
          (held) => held || log.warn('job lease was taken over by another worker'),
          () => undefined, // the store is down: the lease may lapse, and the job then runs again, idempotently
        );
      },
      (jobs.leaseSeconds * 1000) / 3,
    );
    timer.unref();
    return () => clearInterval(timer);
  }

  async function run(job: Job & { leaseId: string }): Promise<void> {
    const log = logger.child({ job_id: job.id, kind: job.kind, request_id: job.requestId });
    const handler = handlers[job.kind];
    const stopHeartbeat = heartbeat(job, log);
    const attempt = inlineRun(job, true);
    try {
      if (!handler) throw new Error(`No handler for job kind ${job.kind}`);
      const { links } = await handler(job, attempt.run);
      const outcome: JobOutcome = { status: 'processed', statusCode: 200, links };
      if (!attempt.committed()) await jobs.finish(job.id, outcome);
      ended(job, outcome, true);
      log.info('job processed');
    } catch (error) {
      if (error instanceof EsozError) {
        const outcome: JobOutcome = { status: 'failed', statusCode: error.status, error: error.toBody() };
        await jobs.finish(job.id, outcome);
        ended(job, outcome, true);
        log.info({ status_code: error.status, message: error.message }, 'job failed');
      } else if (error instanceof ProjectionTimeoutError) {
        log.warn({ err: error }, 'read model not caught up yet; job will be retried');
        await jobs.retryLater(job.id, 1);
      } else if (isStoreUnavailable(error)) {
        log.warn({ err: error }, 'a store is unreachable; job will be retried');
        await jobs.retryLater(job.id, 1, { countAttempt: false });
      } else if (job.attempts >= MAX_ATTEMPTS) {
        log.error({ err: error }, 'job failed for good');
        const outcome: JobOutcome = { status: 'failed', statusCode: 500, error: internalError().toBody() };
        await jobs.finish(job.id, outcome);
        ended(job, outcome, true);
      } else {
        log.error({ err: error, attempts: job.attempts }, 'job errored; will retry');
        await jobs.retryLater(job.id, Math.min(30, 2 ** job.attempts));
      }
    } finally {
      stopHeartbeat();
    }
  }

  async function runOnce(): Promise<boolean> {
    const job = await jobs.claim();
    if (!job) return false;
    await run(job);
    return true;
  }

  async function loop() {
    while (running) {
      try {
        const ran = await runOnce();
        outage.recovered();
        if (!ran) await sleep(pollIntervalMs);
      } catch (error) {
        // Claiming or recording an outcome failed (the store is down): a job left unrecorded keeps its
        // lease, which lapses, and the job is then claimed again.
        await sleep(outage.failed(error));
      }
    }
  }

  const queued = () => {
    wakeOne();
    onQueued?.();
  };

  async function accept(newJob: NewJob): Promise<Job> {
    const handler = handlers[newJob.kind];
    if (!running || !inline || !handler) {
      const { job, created } = await jobs.enqueue(newJob);
      if (created) queued();
      return job;
    }
    const job = jobs.started(newJob);
    const attempt = inlineRun(job, false);
    let outcome: JobOutcome;
    try {
      const { links } = await handler(job, attempt.run);
      outcome = { status: 'processed', statusCode: 200, links };
      if (attempt.committed()) return ended(job, outcome, false);
    } catch (error) {
      if (!(error instanceof EsozError)) {
        // Not the job's answer (a store failed, a bug): the queue retries it with back-off, as any job.
        logger.warn({ err: error, job_id: job.id, kind: job.kind, request_id: job.requestId }, 'job could not finish within its request; queued');
        const pending = await jobs.enqueueStarted(job);
        queued();
        return pending;
      }
      outcome = { status: 'failed', statusCode: error.status, error: error.toBody() };
    }
    await jobs.insertFinished(job, outcome);
    return ended(job, outcome, false);
  }

  return {
    start() {
      if (running) return;
      running = true;
      for (let i = 0; i < concurrency; i++) loops.push(loop());
    },
    async stop() {
      running = false;
      wake();
      await Promise.all(loops.splice(0));
    },
    wake: () => void wakeOne(),
    runOnce,
    accept,
  };
}
