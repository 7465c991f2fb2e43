/**
 * Durable async jobs (spec §0.3) in PostgreSQL/PGlite. A job is leased by a worker for a short time
 * and the worker renews the lease while the job runs (heartbeat); a worker that dies stops renewing,
 * so another process (or the restarted server) takes the job over once the lease runs out.
 * The same request sent again while its job is pending gets that job back (unique request hash).
 */
import { createHash } from 'node:crypto';
import { uuidv7 } from '../shared/uuidv7.js';
import type { Database } from '../database/database.js';
import type { EsozErrorBody } from '../domain/shared/esozError.js';
import type { JsonObject, TransactionalWrite } from '../eventStore/eventStore.js';

export type JobLink = { entity: string; href: string };
export type JobStatus = 'pending' | 'processed' | 'failed';

export type Job = {
  id: string;
  kind: string;
  legalEntityId: string;
  userId: string;
  request: JsonObject;
  requestId: string;
  status: JobStatus;
  statusCode: number | null;
  links: JobLink[] | null;
  error: EsozErrorBody | null;
  attempts: number;
  eta: string;
  insertedAt: string;
  updatedAt: string;
};

const jobsSchema = `
create table if not exists jobs (
  id uuid primary key,
  kind text not null,
  legal_entity_id text not null,
  user_id text not null,
  request_hash text not null,
  request jsonb not null,
  request_id text not null,
  status text not null check (status in ('pending', 'processed', 'failed')),
  status_code int,
  links jsonb,
  error jsonb,
  attempts int not null default 0,
  run_after timestamptz not null default now(),
  eta timestamptz not null,
  inserted_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table jobs add column if not exists lease_id uuid;
create unique index if not exists jobs_pending_request on jobs (request_hash) where status = 'pending';
create index if not exists jobs_runnable on jobs (run_after) where status = 'pending';
`;

/** Jobs not finished yet, through the partial index of pending jobs (the table keeps every job ever accepted). */
export const PENDING_JOBS_SQL = `select count(*) as n from jobs where status = 'pending'`;

export async function countPendingJobs(database: Database): Promise<number> {
  const { rows } = await database.pool.query<{ n: string }>(PENDING_JOBS_SQL);
  return Number(rows[0]!.n);
}

type Row = {
  id: string;
  kind: string;
  legal_entity_id: string;
  user_id: string;
  request: JsonObject;
  request_id: string;
  status: JobStatus;
  status_code: number | null;
  links: JobLink[] | null;
  error: EsozErrorBody | null;
  attempts: number;
  eta: Date;
  inserted_at: Date;
  updated_at: Date;
};
const toJob = (row: Row): Job => ({
  id: row.id,
  kind: row.kind,
  legalEntityId: row.legal_entity_id,
  userId: row.user_id,
  request: row.request,
  requestId: row.request_id,
  status: row.status,
  statusCode: row.status_code,
  links: row.links,
  error: row.error,
  attempts: row.attempts,
  eta: row.eta.toISOString(),
  insertedAt: row.inserted_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

export type JobOutcome = { status: 'processed'; statusCode: number; links: JobLink[] } | { status: 'failed'; statusCode: number; error: EsozErrorBody };

export type NewJob = { kind: string; legalEntityId: string; userId: string; request: JsonObject; requestId: string };

export type JobStore = ReturnType<typeof createJobStoreOn>;

/**
 * The hash that makes "the same request" the same: who sent it, what, and to which resource. The hashed
 * text is JSON.stringify([kind, legalEntityId, userId, request]), built around `requestJson` (the
 * request's JSON, which the row stores too) so the request is serialised once.
 */
export const requestHash = (job: NewJob, requestJson: string = JSON.stringify(job.request)): string =>
  createHash('sha256')
    .update(`[${JSON.stringify(job.kind)},${JSON.stringify(job.legalEntityId)},${JSON.stringify(job.userId)},${requestJson}]`)
    .digest('hex');

export async function createJobStore(database: Database, { leaseSeconds = 10, etaSeconds = 5 } = {}) {
  await database.migrate('jobs', jobsSchema);
  return createJobStoreOn(database, { leaseSeconds, etaSeconds });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function createJobStoreOn(database: Database, { leaseSeconds, etaSeconds }: { leaseSeconds: number; etaSeconds: number }) {
  const pool = database.pool;
  const outcomeValues = (outcome: JobOutcome) => [
    outcome.status,
    outcome.statusCode,
    outcome.status === 'processed' ? JSON.stringify(outcome.links) : null,
    outcome.status === 'failed' ? JSON.stringify(outcome.error) : null,
  ];
  /** A job that runs at once, within the request that accepted it (nothing written yet). */
  const started = (job: NewJob): Job => {
    const now = new Date().toISOString();
    return { ...job, id: uuidv7(), status: 'pending', statusCode: null, links: null, error: null, attempts: 1, eta: now, insertedAt: now, updatedAt: now };
  };
  /** The row of a job `started` in this process, with its outcome (one insert, in or out of the command's transaction). */
  const finishedRow = (job: Job, outcome: JobOutcome): TransactionalWrite => {
    const requestJson = JSON.stringify(job.request);
    return {
      text: `insert into jobs (id, kind, legal_entity_id, user_id, request_hash, request, request_id, status, status_code, links, error, attempts, eta, inserted_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $12)`,
      values: [
        ...[job.id, job.kind, job.legalEntityId, job.userId, requestHash(job, requestJson), requestJson, job.requestId],
        ...outcomeValues(outcome),
        job.insertedAt,
      ],
    };
  };
  /** A claimed job's outcome (one update, in or out of the command's transaction). */
  const finishUpdate = (id: string, outcome: JobOutcome): TransactionalWrite => ({
    text: `update jobs set status = $2, status_code = $3, links = $4, error = $5, updated_at = now() where id = $1 and status = 'pending'`,
    values: [id, ...outcomeValues(outcome)],
  });
  return {
    started,
    /** The outcome of a job as a write: an insert for one `started` here, an update for a claimed one. */
    outcomeWrite: (job: Job, outcome: JobOutcome, { claimed }: { claimed: boolean }): TransactionalWrite =>
      claimed ? finishUpdate(job.id, outcome) : finishedRow(job, outcome),

    /** Records a `started` job's outcome on its own (nothing was appended, or it failed). */
    async insertFinished(job: Job, outcome: JobOutcome): Promise<void> {
      const { text, values } = finishedRow(job, outcome);
      await pool.query(text, values);
    },

    /**
     * Queues a `started` job that could not finish within its request (an unexpected error): the worker
     * retries it. Returns it, or what stands in its way: its own row (its transaction did commit) or the
     * pending job of the same request.
     */
    async enqueueStarted(job: Job): Promise<Job> {
      const requestJson = JSON.stringify(job.request);
      const hash = requestHash(job, requestJson);
      const inserted = await pool.query<Row>(
        `insert into jobs (id, kind, legal_entity_id, user_id, request_hash, request, request_id, status, eta)
         values ($1, $2, $3, $4, $5, $6, $7, 'pending', now() + make_interval(secs => $8))
         on conflict do nothing returning *`,
        [job.id, job.kind, job.legalEntityId, job.userId, hash, requestJson, job.requestId, etaSeconds],
      );
      if (inserted.rows[0]) return toJob(inserted.rows[0]);
      const { rows } = await pool.query<Row>(`select * from jobs where id = $1 or (request_hash = $2 and status = 'pending') order by id = $1 desc limit 1`, [
        job.id,
        hash,
      ]);
      return rows[0] ? toJob(rows[0]) : job;
    },

    /** Returns the new job, or the pending job of the same request (`created: false`). */
    async enqueue(job: NewJob): Promise<{ job: Job; created: boolean }> {
      const requestJson = JSON.stringify(job.request);
      const hash = requestHash(job, requestJson);
      for (;;) {
        const inserted = await pool.query<Row>(
          `insert into jobs (id, kind, legal_entity_id, user_id, request_hash, request, request_id, status, eta)
           values ($1, $2, $3, $4, $5, $6, $7, 'pending', now() + make_interval(secs => $8))
           on conflict (request_hash) where status = 'pending' do nothing returning *`,
          [uuidv7(), job.kind, job.legalEntityId, job.userId, hash, requestJson, job.requestId, etaSeconds],
        );
        if (inserted.rows[0]) return { job: toJob(inserted.rows[0]), created: true };
        const existing = await pool.query<Row>(`select * from jobs where request_hash = $1 and status = 'pending'`, [hash]);
        if (existing.rows[0]) return { job: toJob(existing.rows[0]), created: false };
        // It finished between the two statements: the request is new again.
      }
    },

    async get(id: string): Promise<Job | null> {
      if (!UUID.test(id)) return null;
      const { rows } = await pool.query<Row>('select * from jobs where id = $1', [id]);
      return rows[0] ? toJob(rows[0]) : null;
    },

    leaseSeconds,

    /** Leases the oldest runnable job, or returns null. `leaseId` identifies this lease for renewals. */
    async claim(): Promise<(Job & { leaseId: string }) | null> {
      const leaseId = uuidv7();
      const { rows } = await pool.query<Row>(
        `update jobs set attempts = attempts + 1, run_after = now() + make_interval(secs => $1), lease_id = $2, updated_at = now()
         where id = (select id from jobs where status = 'pending' and run_after <= now()
                     order by run_after, inserted_at for update skip locked limit 1)
         returning *`,
        [leaseSeconds, leaseId],
      );
      return rows[0] ? { ...toJob(rows[0]), leaseId } : null;
    },

    /** Extends a lease we still hold; false when it was taken over (the job then runs elsewhere too,
     * which the idempotent commands make harmless). */
    async renew(id: string, leaseId: string): Promise<boolean> {
      const { rowCount } = await pool.query(
        `update jobs set run_after = now() + make_interval(secs => $3) where id = $1 and lease_id = $2 and status = 'pending'`,
        [id, leaseId, leaseSeconds],
      );
      return rowCount === 1;
    },

    async finish(id: string, outcome: JobOutcome) {
      const { text, values } = finishUpdate(id, outcome);
      await pool.query(text, values);
    },

    /** Gives the job back to be retried after `delaySeconds`; `countAttempt: false` when the failure
     * was not the job's (a store was unreachable), so an outage never uses up its attempts. */
    async retryLater(id: string, delaySeconds: number, { countAttempt = true }: { countAttempt?: boolean } = {}) {
      await pool.query(
        `update jobs set run_after = now() + make_interval(secs => $2), attempts = attempts - $3, lease_id = null, updated_at = now()
         where id = $1 and status = 'pending'`,
        [id, delaySeconds, countAttempt ? 0 : 1],
      );
    },
  };
}
