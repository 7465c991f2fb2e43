/**
 * One PostgreSQL-speaking database for the event store (postgres/pglite), jobs, checkpoints and the
 * PostgreSQL read models. A PostgreSQL server gets a real pool; PGlite gets one connection (its socket
 * server runs one backend), so nothing may take a second connection while holding the first.
 */
import pg from 'pg';

export type Sql = pg.Pool | pg.PoolClient;

/** Names interpolated into SQL (schemas, tables) must be plain lower-case identifiers. */
export const SQL_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export interface SessionLock {
  release(): Promise<void>;
}

export interface Database {
  readonly kind: 'postgres' | 'pglite';
  readonly pool: pg.Pool;
  withTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  /** Non-blocking: null when another session holds the lock. Held until released or the process ends. */
  tryLock(key: string): Promise<SessionLock | null>;
  /** DDL runs under a transaction-scoped advisory lock so concurrent starters don't race. */
  migrate(name: string, ddl: string): Promise<void>;
  close(): Promise<void>;
}

// pg returns int8 as string by default; we parse bigint columns explicitly where we read them.
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value: string) => Number(value));

// Advisory locks are per database; installations in different schemas of one database (DATABASE_SCHEMA)
// must not block each other, so every key is qualified by the session's schema.
const LOCK_ID = `hashtextextended(current_schema() || '/' || $1, 0)`;

export async function withTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const result = await work(client);
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

type Options = { kind: 'postgres' | 'pglite'; pool: pg.Pool; onClose?: () => Promise<void> };

export function createDatabase({ kind, pool, onClose }: Options): Database {
  const heldInProcess = new Set<string>();
  const migrated = new Set<string>();
  pool.on('error', () => undefined); // an idle client's error must not crash the process; the next query reports it

  return {
    kind,
    pool,
    withTransaction: (work) => withTransaction(pool, work),

    async tryLock(key) {
      if (kind === 'pglite') {
        // One connection, one process owns the data directory: an in-process lock is the whole truth.
        if (heldInProcess.has(key)) return null;
        heldInProcess.add(key);
        return { release: async () => void heldInProcess.delete(key) };
      }
      const client = await pool.connect();
      try {
        const { rows } = await client.query<{ locked: boolean }>(
          `select pg_try_advisory_lock(${LOCK_ID}) as locked`,
          [key],
        );
        if (!rows[0]?.locked) {
          client.release();
          return null;
        }
      } catch (error) {
        client.release(error as Error);
        throw error;
      }
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          try {
            await client.query(`select pg_advisory_unlock(${LOCK_ID})`, [key]);
            client.release();
          } catch (error) {
            client.release(error as Error);
          }
        },
      };
    },

    async migrate(name, ddl) {
      if (migrated.has(name)) return;
      await withTransaction(pool, async (client) => {
        await client.query(`select pg_advisory_xact_lock(${LOCK_ID})`, [`migrate:${name}`]);
        await client.query(ddl);
      });
      migrated.add(name);
    },

    async close() {
      await pool.end();
      await onClose?.();
    },
  };
}

/** `schema` puts every table in that schema (created if missing): isolated test databases on one server. */
export async function openPostgres(connectionString: string, { max = 10, schema }: { max?: number; schema?: string } = {}): Promise<Database> {
  if (schema !== undefined && !SQL_IDENTIFIER.test(schema)) throw new Error(`Invalid schema name: ${schema}`);
  if (schema) {
    const admin = new pg.Client({ connectionString });
    await admin.connect();
    try {
      await admin.query(`create schema if not exists ${schema}`);
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({ connectionString, max, ...(schema ? { options: `-c search_path=${schema}` } : {}) });
  return createDatabase({ kind: 'postgres', pool });
}
