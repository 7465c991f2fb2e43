/**
 * GET /api/jobs/{id}: the job of the token's legal entity, shaped as the official jobs schema
 * (openapi/jobs-get-details.json) shapes each outcome: pending → 200; processed → 303 with links;
 * failed → the job's own status code with the error in the shape that code's schema gives it.
 */
import { notFound, type EsozErrorBody } from '../domain/shared/esozError.js';
import type { Job, JobStore } from '../jobs/jobStore.js';
import type { JobWatch } from '../jobs/jobWatch.js';
import { jobPath } from '../shared/resourcePaths.js';

export type JobAnswer = { code: number; data: Record<string, unknown> };

export function renderJob(job: Job): JobAnswer {
  const base = { status: job.status, eta: job.eta };
  if (job.status === 'pending') return { code: 200, data: { ...base, links: [{ entity: 'job', href: jobPath(job.id) }] } };
  const statusCode = job.statusCode ?? 500;
  if (job.status === 'processed') return { code: 303, data: { ...base, status_code: String(statusCode), links: job.links ?? [] } };
  const error: EsozErrorBody = job.error ?? { type: 'internal_error' };
  switch (statusCode) {
    case 403:
      return { code: 403, data: { ...base, status_code: '403', error: error.message ?? error.type } };
    case 404:
    case 500:
      return { code: statusCode, data: { error: { type: error.type } } };
    case 422:
      return { code: 422, data: { ...base, status_code: '422', error: { type: error.type, message: error.message ?? '', invalid: error.invalid ?? [] } } };
    default:
      return { code: statusCode, data: { ...base, status_code: String(statusCode), error: { type: error.type, message: error.message ?? error.type } } };
  }
}

/** The headers of a job answer besides the JSON's: when to ask again (pending), and that `Prefer` shapes it. */
export const jobAnswerHeaders = (answer: JobAnswer): Array<[string, string]> => [
  ...(answer.code === 200 ? [['retry-after', '1'] as [string, string]] : []),
  ['vary', 'prefer'],
];

/** The job GET as the API answers it: `Prefer: wait` honoured, for the caller's legal entity. */
export const answerJobGet = (jobs: JobStore, watch: JobWatch | null, id: string, legalEntityId: string, prefer: string | undefined): Promise<JobAnswer> =>
  getJob(jobs, watch, id, legalEntityId, preferredWait(prefer));

/** The longest `Prefer: wait` honoured (RFC 7240 lets the server choose); longer asks wait this long. */
export const MAX_JOB_WAIT_SECONDS = 30;
/** A waiter reads the job again at least this often (a NOTIFY from another process may be lost with its connection). */
const RECHECK_MS = 1_000;

/** Seconds asked for by `Prefer: wait=N` (RFC 7240; other preferences are ignored), bounded; 0 when absent. */
export function preferredWait(prefer: string | undefined): number {
  if (!prefer) return 0;
  for (const preference of prefer.split(',')) {
    const match = /^\s*wait\s*=\s*"?(\d{1,9})"?\s*(;.*)?$/i.exec(preference);
    if (match) return Math.min(MAX_JOB_WAIT_SECONDS, Number(match[1]));
  }
  return 0;
}

/**
 * The job of the caller's legal entity; pending jobs are waited for up to `waitSeconds` and answered
 * the moment they end. A job finished by this process lately is answered from memory.
 */
export async function getJob(jobs: JobStore, watch: JobWatch | null, id: string, legalEntityId: string, waitSeconds = 0): Promise<JobAnswer> {
  const deadline = Date.now() + waitSeconds * 1000;
  for (;;) {
    const remaining = deadline - Date.now();
    const waiting = watch && remaining > 0 && !watch.isClosed() ? watch.waitFor(id, Math.min(remaining, RECHECK_MS)) : null;
    const job = watch?.recent(id) ?? (await jobs.get(id));
    if (!job || job.legalEntityId !== legalEntityId) {
      waiting?.cancel();
      throw notFound('Job not found');
    }
    if (job.status !== 'pending' || !waiting) {
      waiting?.cancel();
      return renderJob(job);
    }
    await waiting.ended;
  }
}
