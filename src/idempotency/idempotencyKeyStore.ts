/**
 * X-Idempotency-Key records in PostgreSQL/PGlite. A key is reserved by inserting its row first (the
 * primary key makes two concurrent requests with one key race for one row: only one executes); the
 * answer is stored when the request finishes and replayed for a repeat until the key expires.
 */
import type { Database } from '../database/database.js';

const idempotencyKeysSchema = `
create table if not exists idempotency_keys (
  legal_entity_id text not null,
  user_id text not null,
  key text not null,
  request_hash text not null,
  status text not null check (status in ('pending', 'done')),
  response_status int,
  -- text, not jsonb: a replay must be the first answer byte for byte (jsonb reorders keys)
  response_body text,
  created_at timestamptz not null,
  expires_at timestamptz not null,
  primary key (legal_entity_id, user_id, key)
);
create index if not exists idempotency_keys_expiry on idempotency_keys (expires_at);
`;

/** Whose key it is: a key is only ever the same request for the same user of the same legal entity. */
export type IdempotencyKeyId = { legalEntityId: string; userId: string; key: string };

export type Reservation = { kind: 'reserved' } | { kind: 'replay'; status: number; body: string } | { kind: 'different_request' } | { kind: 'in_progress' };

/** A reservation whose request never finished (the process died) stops blocking its key after this. */
const ABANDONED_AFTER_SECONDS = 120;

type Row = {
  request_hash: string;
  status: 'pending' | 'done';
  response_status: number | null;
  response_body: string | null;
  created_at: Date;
  expires_at: Date;
};

export type IdempotencyKeyStore = Awaited<ReturnType<typeof createIdempotencyKeyStore>>;

export async function createIdempotencyKeyStore(database: Database) {
  await database.migrate('idempotency_keys', idempotencyKeysSchema);
  const pool = database.pool;
  const pk = ({ legalEntityId, userId, key }: IdempotencyKeyId) => [legalEntityId, userId, key];

  return {
    async reserve(id: IdempotencyKeyId, requestHash: string, now: Date, ttlSeconds: number): Promise<Reservation> {
      for (;;) {
        const inserted = await pool.query(
          `insert into idempotency_keys (legal_entity_id, user_id, key, request_hash, status, created_at, expires_at)
           values ($1, $2, $3, $4, 'pending', $5, $5::timestamptz + make_interval(secs => $6))
           on conflict do nothing`,
          [...pk(id), requestHash, now, ttlSeconds],
        );
        if (inserted.rowCount === 1) return { kind: 'reserved' };
        const { rows } = await pool.query<Row>(
          `select request_hash, status, response_status, response_body, created_at, expires_at
           from idempotency_keys where legal_entity_id = $1 and user_id = $2 and key = $3`,
          pk(id),
        );
        const row = rows[0];
        if (!row) continue; // deleted between the two statements: try again
        const abandoned = row.status === 'pending' && now.getTime() - row.created_at.getTime() > ABANDONED_AFTER_SECONDS * 1000;
        if (row.expires_at.getTime() <= now.getTime() || abandoned) {
          // An expired key is as good as unused. Delete exactly the row we saw, so a racing
          // request that already replaced it keeps its reservation.
          await pool.query(`delete from idempotency_keys where legal_entity_id = $1 and user_id = $2 and key = $3 and created_at = $4`, [
            ...pk(id),
            row.created_at,
          ]);
          continue;
        }
        if (row.request_hash !== requestHash) return { kind: 'different_request' };
        if (row.status === 'pending') return { kind: 'in_progress' };
        return { kind: 'replay', status: row.response_status ?? 500, body: row.response_body ?? '' };
      }
    },

    /** `body` is the answer's JSON text, exactly as sent. */
    async complete(id: IdempotencyKeyId, status: number, body: string): Promise<void> {
      await pool.query(
        `update idempotency_keys set status = 'done', response_status = $4, response_body = $5
         where legal_entity_id = $1 and user_id = $2 and key = $3 and status = 'pending'`,
        [...pk(id), status, body],
      );
    },

    /** Frees a key whose request failed on our side (5xx), so the client's retry runs. */
    async release(id: IdempotencyKeyId): Promise<void> {
      await pool.query(`delete from idempotency_keys where legal_entity_id = $1 and user_id = $2 and key = $3 and status = 'pending'`, pk(id));
    },

    async purgeExpired(now: Date): Promise<number> {
      const { rowCount } = await pool.query(`delete from idempotency_keys where expires_at <= $1`, [now]);
      return rowCount ?? 0;
    },

    async count(): Promise<number> {
      const { rows } = await pool.query<{ n: string }>(`select count(*) as n from idempotency_keys`);
      return Number(rows[0]!.n);
    },
  };
}
