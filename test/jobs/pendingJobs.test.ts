/**
 * The pending-jobs gauge counts through the partial index of pending jobs: the jobs table keeps every
 * job ever accepted, and a scrape must not read all of them.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { Database } from '../../src/database/database.js';
import { countPendingJobs, createJobStore, PENDING_JOBS_SQL } from '../../src/jobs/jobStore.js';
import { databaseFactories } from '../support/databases.js';
import { plansBeforeAndAfterAnalyze } from '../support/queryPlans.js';

describe.each(databaseFactories())('pending jobs on $name', (factory) => {
  let database: Database;
  beforeEach(async () => {
    database = await factory.open();
    await createJobStore(database);
    await addJobs(102); // two pending, the rest finished
  });
  afterEach(async () => database.close());

  /** Jobs h1…hN: the first two pending, the others finished. */
  const addJobs = (n: number, from = 1) =>
    database.pool.query(
      `insert into jobs (id, kind, legal_entity_id, user_id, request_hash, request, request_id, status, eta)
       select gen_random_uuid(), 'k', 'le', 'u', 'h' || i, '{}', 'r', case when i <= 2 then 'pending' else 'processed' end, now()
       from generate_series($1::int, $2::int) as i`,
      [from, from + n - 1],
    );

  it('counts only the pending ones', async () => {
    expect(await countPendingJobs(database)).toBe(2);
  });

  it('through a partial index of pending jobs, before and after statistics', async () => {
    await addJobs(20_000, 103); // a table the size where a full scan would cost
    const usesIndex = expect.stringMatching(/"Index Name":"(jobs_runnable|jobs_pending_request)"/);
    expect(await plansBeforeAndAfterAnalyze(database, PENDING_JOBS_SQL, 'jobs')).toEqual([
      [false, usesIndex],
      [true, usesIndex],
    ]);
  });
});
