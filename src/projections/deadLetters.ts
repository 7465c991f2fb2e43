/**
 * Dead letters: the events a projection could not apply, in the main database beside the checkpoints.
 * One row per (projection, event): where it is in the log, the error, and what became of it:
 *
 * - `halted`   ON_POISON_EVENT=stop: the projection waits at this event (nothing after it is applied);
 * - `parked`   ON_POISON_EVENT=park: recorded, and the projection went on past it;
 * - `retrying` an operator asked to apply it again (a halted projection tries at once; a parked event,
 *              behind its projection, is tried again by the projection's next rebuild);
 * - `skipped`  an operator chose to do without it: never applied, the projection moves past it;
 * - `resolved` applied after all (on a retry).
 *
 * Parked and skipped events are left out of the projection wherever it runs (live, rebuild, verify), so
 * a rebuild gives the same read model as the live one.
 */
import { z } from 'zod';
import type { Database } from '../database/database.js';
import type { RecordedEvent } from '../eventStore/eventStore.js';
import { uuidv7 } from '../shared/uuidv7.js';
import { describeError } from './errorText.js';

export const DEAD_LETTER_STATUSES = ['halted', 'parked', 'retrying', 'skipped', 'resolved'] as const;
export type DeadLetterStatus = (typeof DEAD_LETTER_STATUSES)[number];

export const deadLetterSchema = z.object({
  id: z.string(),
  projection: z.string(),
  event_id: z.string(),
  position: z.string(),
  stream_name: z.string(),
  revision: z.string(),
  event_type: z.string(),
  error: z.string(),
  status: z.enum(DEAD_LETTER_STATUSES),
  attempts: z.number().int(),
  recorded_at: z.string(),
  updated_at: z.string(),
});
export type DeadLetter = z.infer<typeof deadLetterSchema>;

const DDL = `
create table if not exists projection_dead_letters (
  id uuid primary key,
  projection text not null,
  event_id text not null,
  position text not null,
  stream_name text not null,
  revision bigint not null,
  event_type text not null,
  error text not null,
  status text not null check (status in (${DEAD_LETTER_STATUSES.map((s) => `'${s}'`).join(', ')})),
  attempts int not null default 1,
  recorded_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (projection, event_id)
);`;

const COLUMNS = `id::text, projection, event_id, position, stream_name, revision::text, event_type, error, status, attempts,
  to_char(recorded_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as recorded_at,
  to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as updated_at`;

/** An operator's action that does not apply to the letter's status (409 on the admin API, exit 1 on the CLI). */
export class DeadLetterStateError extends Error {
  constructor(
    readonly letter: DeadLetter,
    action: string,
  ) {
    super(`Dead letter ${letter.id} is ${letter.status}: it cannot be ${action}`);
    this.name = 'DeadLetterStateError';
  }
}

export type DeadLetters = {
  /** Records (or, for an event recorded before, updates) a dead letter; `first` when it is new. */
  record(projection: string, event: RecordedEvent, error: unknown, status: 'halted' | 'parked'): Promise<{ letter: DeadLetter; first: boolean }>;
  list(filter?: { projection?: string; status?: DeadLetterStatus }): Promise<DeadLetter[]>;
  get(id: string): Promise<DeadLetter | null>;
  /** halted or parked → retrying. */
  retry(id: string): Promise<DeadLetter>;
  /** halted, parked or retrying → skipped. */
  skip(id: string): Promise<DeadLetter>;
  /** Marks the projection's retried letters of these events applied. */
  resolve(projection: string, eventIds: readonly string[]): Promise<void>;
  /** Parked and skipped events of the projection, as last loaded (synchronous: the projections filter every batch by it). */
  excluded(projection: string): ReadonlySet<string>;
  /** The projection's letters being retried, as last loaded. */
  retrying(projection: string): ReadonlySet<string>;
  /** Reads the sets above again (after an operator's action, in this process or another). */
  reload(): Promise<void>;
  /** Letters per projection and status (metrics, readiness, verify). */
  counts(): Promise<Array<{ projection: string; status: DeadLetterStatus; count: number }>>;
};

export async function createDeadLetters(database: Database): Promise<DeadLetters> {
  await database.migrate('projection_dead_letters', DDL);
  let excluded = new Map<string, Set<string>>();
  let retrying = new Map<string, Set<string>>();
  const parse = (rows: unknown[]) => rows.map((row) => deadLetterSchema.parse(row));

  const reload = async () => {
    const { rows } = await database.pool.query<{ projection: string; event_id: string; status: DeadLetterStatus }>(
      `select projection, event_id, status from projection_dead_letters where status in ('parked', 'skipped', 'retrying')`,
    );
    const [nextExcluded, nextRetrying] = [new Map<string, Set<string>>(), new Map<string, Set<string>>()];
    for (const { projection, event_id, status } of rows) {
      const into = status === 'retrying' ? nextRetrying : nextExcluded;
      if (!into.has(projection)) into.set(projection, new Set());
      into.get(projection)!.add(event_id);
    }
    [excluded, retrying] = [nextExcluded, nextRetrying];
  };

  const get = async (id: string) => {
    if (!z.uuid().safeParse(id).success) return null;
    const { rows } = await database.pool.query(`select ${COLUMNS} from projection_dead_letters where id = $1`, [id]);
    return parse(rows)[0] ?? null;
  };

  /** Moves a letter from one of `from` to `to`, atomically (two operators, or an operator and the runner). */
  const move = async (id: string, from: readonly DeadLetterStatus[], to: DeadLetterStatus, action: string) => {
    const letter = await get(id);
    if (!letter) return null;
    const { rows } = await database.pool.query(
      `update projection_dead_letters set status = $2, updated_at = now() where id = $1 and status = any($3::text[]) returning ${COLUMNS}`,
      [id, to, from],
    );
    const moved = parse(rows)[0];
    if (!moved) throw new DeadLetterStateError((await get(id)) ?? letter, action);
    await reload();
    return moved;
  };
  const notFound = (id: string): never => {
    throw new DeadLetterNotFoundError(id);
  };

  await reload();
  return {
    async record(projection, event, error, status) {
      const { rows } = await database.pool.query<DeadLetter & { inserted: boolean }>(
        `insert into projection_dead_letters (id, projection, event_id, position, stream_name, revision, event_type, error, status)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         on conflict (projection, event_id) do update
           set error = excluded.error, status = excluded.status, attempts = projection_dead_letters.attempts + 1, updated_at = now()
         returning ${COLUMNS}, (xmax = 0) as inserted`,
        [uuidv7(), projection, event.metadata.eventId, event.position, event.streamName, String(event.revision), event.type, describeError(error), status],
      );
      const { inserted, ...letter } = rows[0]!;
      await reload();
      return { letter: deadLetterSchema.parse(letter), first: inserted };
    },
    async list(filter = {}) {
      const { rows } = await database.pool.query(
        `select ${COLUMNS} from projection_dead_letters
         where ($1::text is null or projection = $1) and ($2::text is null or status = $2)
         order by recorded_at, id`,
        [filter.projection ?? null, filter.status ?? null],
      );
      return parse(rows);
    },
    get,
    retry: async (id) => (await move(id, ['halted', 'parked'], 'retrying', 'retried')) ?? notFound(id),
    skip: async (id) => (await move(id, ['halted', 'parked', 'retrying'], 'skipped', 'skipped')) ?? notFound(id),
    async resolve(projection, eventIds) {
      if (eventIds.length === 0) return;
      await database.pool.query(
        `update projection_dead_letters set status = 'resolved', updated_at = now() where projection = $1 and event_id = any($2::text[]) and status = 'retrying'`,
        [projection, eventIds],
      );
      await reload();
    },
    excluded: (projection) => excluded.get(projection) ?? EMPTY,
    retrying: (projection) => retrying.get(projection) ?? EMPTY,
    reload,
    async counts() {
      const { rows } = await database.pool.query<{ projection: string; status: DeadLetterStatus; count: number }>(
        'select projection, status, count(*)::int as count from projection_dead_letters group by projection, status order by projection, status',
      );
      return rows;
    },
  };
}

const EMPTY: ReadonlySet<string> = new Set();

export class DeadLetterNotFoundError extends Error {
  constructor(readonly id: string) {
    super(`No dead letter ${id}`);
    this.name = 'DeadLetterNotFoundError';
  }
}
