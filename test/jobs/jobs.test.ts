/**
 * Durable jobs: a job survives a restart, the same pending request gets its job back, a dead worker's
 * lease expires, and each outcome is recorded as the jobs schema needs it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from '../../src/database/database.js';
import { openPGlite } from '../../src/database/pglite.js';
import { conflict } from '../../src/domain/shared/esozError.js';
import { createJobStore, type Job, type NewJob } from '../../src/jobs/jobStore.js';
import { createJobWorker } from '../../src/jobs/jobWorker.js';
import { silentLogger } from '../../src/logger.js';
import { renderJob } from '../../src/http/jobs.js';
import { databaseFactories } from '../support/databases.js';
import { eventually } from '../support/events.js';

const newJob = (request: NewJob['request'], kind = 'stop'): NewJob => ({ kind, legalEntityId: 'le-1', userId: 'user-1', request, requestId: 'req-1' });

describe('a job survives a restart of the server (PGlite on disk)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jobs-restart-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('is processed after the restart', async () => {
    // First life: the request is accepted, then the process goes away before any worker ran.
    let database = await openPGlite(dir);
    let jobs = await createJobStore(database);
    const { job } = await jobs.enqueue(newJob({ device_dispense_id: 'dd-1' }));
    await database.close();

    // Second life: a new database handle on the same files, and a worker.
    database = await openPGlite(dir);
    jobs = await createJobStore(database);
    expect((await jobs.get(job.id))!.status).toBe('pending');
    const seen: string[] = [];
    const worker = createJobWorker({
      jobs,
      logger: silentLogger(),
      handlers: { stop: async (j) => (seen.push(j.id), { links: [{ entity: 'device_dispense', href: '/api/x' }] }) },
      pollIntervalMs: 20,
    });
    worker.start();
    try {
      await eventually(async () => (await jobs.get(job.id))!.status === 'processed', 10_000, 'processed job');
    } finally {
      await worker.stop();
      await database.close();
    }
    expect(seen).toEqual([job.id]);
    // Two PGlite starts on disk (WASM boot and recovery each): on a loaded 2-core machine well past 60 s.
  }, 180_000);
});

describe.each(databaseFactories())('job store: $name', (factory) => {
  let database: Database;
  beforeAll(async () => {
    database = await factory.open();
  });
  afterAll(async () => database.close());

  it('answers the same request sent again while pending with its existing job, and a new one once it finished', async () => {
    const jobs = await createJobStore(database);
    const first = await jobs.enqueue(newJob({ id: 'same' }));
    const again = await jobs.enqueue(newJob({ id: 'same' }));
    const other = await jobs.enqueue(newJob({ id: 'other' }));
    expect(first.created).toBe(true);
    expect(again).toEqual({ job: first.job, created: false });
    expect(other.job.id).not.toBe(first.job.id);

    await jobs.finish(first.job.id, { status: 'processed', statusCode: 200, links: [] });
    const later = await jobs.enqueue(newJob({ id: 'same' }));
    expect(later.created).toBe(true);
    expect(later.job.id).not.toBe(first.job.id);
  });

  it('gives a job whose worker died to another worker once the lease expires', async () => {
    const jobs = await createJobStore(database, { leaseSeconds: 1 });
    const { job } = await jobs.enqueue(newJob({ id: `lease-${Date.now()}` }, 'lease'));
    let claimed: Job | null = null;
    while ((claimed = await jobs.claim()) && claimed.id !== job.id) await jobs.finish(claimed.id, { status: 'processed', statusCode: 200, links: [] });
    expect(claimed?.id).toBe(job.id);
    expect(await jobs.claim()).toBeNull(); // leased: nobody else gets it …
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const retaken = await jobs.claim(); // … until the lease ran out
    expect(retaken?.id).toBe(job.id);
    expect(retaken?.attempts).toBe(2);
  });

  it('records an EsozError as the failed job, and renders every outcome as the jobs schema shapes it', async () => {
    const jobs = await createJobStore(database);
    const worker = createJobWorker({
      jobs,
      logger: silentLogger(),
      handlers: {
        fail: async () => {
          throw conflict('Device dispense in status completed cannot be stopped');
        },
      },
    });
    const { job } = await jobs.enqueue(newJob({ n: 1 }, 'fail'));
    while (await worker.runOnce());
    const failed = (await jobs.get(job.id))!;
    expect(failed).toMatchObject({ status: 'failed', statusCode: 409 });
    expect(renderJob(failed)).toEqual({
      code: 409,
      data: {
        status: 'failed',
        eta: failed.eta,
        status_code: '409',
        error: { type: 'request_conflict', message: 'Device dispense in status completed cannot be stopped' },
      },
    });
    expect(renderJob({ ...failed, status: 'pending' }).code).toBe(200);
    expect(renderJob({ ...failed, status: 'processed', statusCode: 200, links: [{ entity: 'device_dispense', href: '/x' }] })).toEqual({
      code: 303,
      data: { status: 'processed', eta: failed.eta, status_code: '200', links: [{ entity: 'device_dispense', href: '/x' }] },
    });
    expect(renderJob({ ...failed, statusCode: 404, error: { type: 'not_found', message: 'not_found' } })).toEqual({
      code: 404,
      data: { error: { type: 'not_found' } },
    });
  });

  it('retries an unexpected error later instead of failing the job at once', async () => {
    const jobs = await createJobStore(database);
    let calls = 0;
    const worker = createJobWorker({
      jobs,
      logger: silentLogger(),
      handlers: {
        flaky: async () => {
          calls += 1;
          if (calls === 1) throw new Error('connection reset');
          return { links: [] };
        },
      },
    });
    const { job } = await jobs.enqueue(newJob({ n: 2 }, 'flaky'));
    while (await worker.runOnce());
    expect((await jobs.get(job.id))!.status).toBe('pending');
    await database.pool.query(`update jobs set run_after = now() where id = $1`, [job.id]);
    while (await worker.runOnce());
    expect((await jobs.get(job.id))!.status).toBe('processed');
  });
});
