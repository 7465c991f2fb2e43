/**
 * Runs pending jobs: claims one, calls the handler registered for its kind, records the outcome.
 * An EsozError is the job's answer (failed with that status). A projection that has not caught up yet,
 * or an unexpected error, gives the job back for a later attempt; after MAX_ATTEMPTS unexpected
 * errors it fails with 500 internal_error; an unreachable store is not the job's fault and never
 * uses up its attempts. While a job runs its lease is renewed (heartbeat), so a crashed process's job
 * is taken over within one lease. Handlers must be idempotent per job id (commands check the
 * causation id of the stream's events), because a job can run again after a crash.
 */
import { EsozError, internalError } from '../domain/shared/esozError.js';
import type { Logger } from '../logger.js';
import { createWakeableSleep } from '../shared/wakeableSleep.js';
import { ProjectionTimeoutError } from '../projections/projectionRunner.js';
import { createOutage } from '../shared/outage.js';
import { isStoreUnavailable } from '../shared/storeUnavailable.js';
import type { Job, JobLink, JobStore } from './jobStore.js';

export type JobHandler = (job: Job) => Promise<{ links: JobLink[] }>;
export type JobHandlers = Record<string, JobHandler>;

const MAX_ATTEMPTS = 5;

export type JobWorker = { start(): void; stop(): Promise<void>; wake(): void; runOnce(): Promise<boolean> };

export function createJobWorker({
  jobs,
  handlers,
  logger,
  concurrency = 2,
  pollIntervalMs = 200,
}: {
  jobs: JobStore;
  handlers: JobHandlers;
  logger: Logger;
  concurrency?: number;
  pollIntervalMs?: number;
}): JobWorker {
  let running = false;
  const { sleep, wake } = createWakeableSleep();
  const loops: Promise<void>[] = [];
  const outage = createOutage(logger.child({ component: 'job_worker' }), 'job worker', { minMs: 200, maxMs: 5_000 });

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
    try {
      if (!handler) throw new Error(`No handler for job kind ${job.kind}`);
      const { links } = await handler(job);
      await jobs.finish(job.id, { status: 'processed', statusCode: 200, links });
      log.info('job processed');
    } catch (error) {
      if (error instanceof EsozError) {
        await jobs.finish(job.id, { status: 'failed', statusCode: error.status, error: error.toBody() });
        log.info({ status_code: error.status, message: error.message }, 'job failed');
      } else if (error instanceof ProjectionTimeoutError) {
        log.warn({ err: error }, 'read model not caught up yet; job will be retried');
        await jobs.retryLater(job.id, 1);
      } else if (isStoreUnavailable(error)) {
        log.warn({ err: error }, 'a store is unreachable; job will be retried');
        await jobs.retryLater(job.id, 1, { countAttempt: false });
      } else if (job.attempts >= MAX_ATTEMPTS) {
        log.error({ err: error }, 'job failed for good');
        await jobs.finish(job.id, { status: 'failed', statusCode: 500, error: internalError().toBody() });
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
    wake,
    runOnce,
  };
}
