/**
 * The local event-manager log: every derived StatusChangeEvent, in derivation order, with its
 * delivery state. It is kept whether or not EVENT_MANAGER_URL is set.
 */
import type { Database } from '../database/database.js';

/** As the contract fixes it; `id` is the source domain event's id (receivers deduplicate by it). */
export type StatusChangeEvent = {
  id: string;
  event_type: 'StatusChangeEvent';
  entity_type: 'DeviceDispense' | 'DeviceRequest';
  entity_id: string;
  properties: { status: { new_value: string } };
  event_time: string;
  changed_by: string;
};

/** The last derived status of each entity (what the next status change is compared with). */
export const entityStatusTableDdl = (table: string) => `create table if not exists ${table} (
  entity_type text not null,
  entity_id text not null,
  status text not null,
  primary key (entity_type, entity_id)
)`;

export const eventManagerSchema = `
create table if not exists event_manager_log (
  seq bigserial primary key,
  id uuid not null unique,
  entity_type text not null,
  entity_id text not null,
  payload jsonb not null,
  inserted_at timestamptz not null default now(),
  attempts int not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_error text,
  delivered_at timestamptz
);
create index if not exists event_manager_log_pending on event_manager_log (entity_id, seq) where delivered_at is null;
${entityStatusTableDdl('event_manager_entity_status')};`;

export type LogEntry = { seq: number; payload: StatusChangeEvent; attempts: number; deliveredAt: string | null; lastError: string | null };

export async function readEventManagerLog(database: Database, { entityId }: { entityId?: string } = {}): Promise<LogEntry[]> {
  await database.migrate('event_manager', eventManagerSchema);
  type Row = { seq: string; payload: StatusChangeEvent; attempts: number; delivered_at: Date | null; last_error: string | null };
  const { rows } = await database.pool.query<Row>(
    `select seq, payload, attempts, delivered_at, last_error from event_manager_log ${entityId ? 'where entity_id = $1' : ''} order by seq`,
    entityId ? [entityId] : [],
  );
  return rows.map((r) => ({
    seq: Number(r.seq),
    payload: r.payload,
    attempts: r.attempts,
    deliveredAt: r.delivered_at?.toISOString() ?? null,
    lastError: r.last_error,
  }));
}

/** The undelivered entries' SQL (an index scan of event_manager_log_pending, exported for its plan test). */
export const PENDING_DELIVERY_SQL = `select count(*) as backlog, coalesce(sum(attempts), 0) as attempts, count(*) filter (where last_error is not null) as failing
  from event_manager_log where delivered_at is null`;

export type PendingDelivery = { backlog: number; attempts: number; failing: number };

/**
 * What is still to deliver: entries, the attempts recorded on them, and those whose last attempt
 * failed. Reads only the undelivered entries (the partial index): the log itself grows with the history.
 */
export async function readPendingDelivery(database: Database): Promise<PendingDelivery> {
  const { rows } = await database.pool.query<{ backlog: string; attempts: string; failing: string }>(PENDING_DELIVERY_SQL);
  const row = rows[0]!;
  return { backlog: Number(row.backlog), attempts: Number(row.attempts), failing: Number(row.failing) };
}
