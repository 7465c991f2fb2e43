/**
 * GET /api/jobs/{id}: the job of the token's legal entity, shaped as the official jobs schema
 * (openapi/jobs-get-details.json) shapes each outcome: pending → 200; processed → 303 with links;
 * failed → the job's own status code with the error in the shape that code's schema gives it.
 */
import { notFound, type EsozErrorBody } from '../domain/shared/esozError.js';
import type { Job, JobStore } from '../jobs/jobStore.js';
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

export async function getJob(jobs: JobStore, id: string, legalEntityId: string): Promise<JobAnswer> {
  const job = await jobs.get(id);
  if (!job || job.legalEntityId !== legalEntityId) throw notFound('Job not found');
  return renderJob(job);
}
