/**
 * One PostgreSQL-speaking database for the event store (postgres/pglite), jobs, checkpoints and the
 * PostgreSQL read models. A PostgreSQL server gets a real pool; PGlite gets one connection (its socket
 * server runs one backend), so nothing may take a second connection while holding the first.
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';

export type Sql = pg.Pool | pg.PoolClient;

/** Names interpolated into SQL (schemas, tables) must be plain lower-case identifiers. */
export const SQL_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export interface SessionLock {
  /** Resolves when the lock's connection is gone, and the lock with it (a restart, a failover, a
   * terminated backend). The holder must stop the work the lock guards until it holds it again. */
  readonly lost: Promise<void>;
  release(): Promise<void>;
}

/** `onReconnect`: the listening connection was lost and is back (messages sent meanwhile are gone). */
export type ListenOptions = { onReconnect?: () => void };

export interface Database {
  readonly kind: 'postgres' | 'pglite';
  readonly pool: pg.Pool;
  withTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  /** Non-blocking: null when another session holds the lock. Held on a connection of its own (outside
   * the pool) until released, the process ends or that connection is lost (see `SessionLock.lost`). */
  tryLock(key: string): Promise<SessionLock | null>;
  /**
   * Messages between the processes of one installation (PostgreSQL LISTEN/NOTIFY on a connection of
   * its own, outside the pool, reconnecting after a loss; in-process on PGlite, which one process owns).
   * Channels are qualified by the schema, like advisory locks.
   */
  listen(channel: string, onMessage: (payload: string) => void, options?: ListenOptions): Promise<{ close(): Promise<void> }>;
  notify(channel: string, payload: string): Promise<void>;
  /** DDL runs under a transaction-scoped advisory lock so concurrent starters don't race. */
  migrate(name: string, ddl: string): Promise<void>;
  close(): Promise<void>;
}

// int8 stays a string (pg's default; bigint columns are parsed explicitly where they are read).
// NUMERIC (e.g. payment amounts, count(*)::numeric) becomes a JS number.
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value: string) => Number(value));

// Advisory locks are per database; installations in different schemas of one database (DATABASE_SCHEMA)
// must not block each other, so every key is qualified by the session's schema.
const LOCK_ID = `hashtextextended(current_schema() || '/' || $1, 0)`;

/**
 * Several writes as one statement (data-modifying CTEs, each numbered on from the previous one's
 * parameters): a transaction's side writes cost one round trip, not one each.
 */
export function combineWrites(writes: ReadonlyArray<{ text: string; values: unknown[] }>): { text: string; values: unknown[] } {
  if (writes.length === 1) return writes[0]!;
  const values: unknown[] = [];
  return { text: `with ${writesAsCtes(writes, values).join(', ')} select 1`, values };
}

/** Each write as a CTE `w<i> as (…)`, its parameters renumbered after those already in `values` (appended to it). */
export function writesAsCtes(writes: ReadonlyArray<{ text: string; values: unknown[] }>, values: unknown[]): string[] {
  return writes.map((write, i) => {
    const offset = values.length;
    values.push(...write.values);
    return `w${i} as (${write.text.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + offset}`)})`;
  });
}

const statementNames = new Map<string, string>();
const MAX_NAMED_STATEMENTS = 1_000;
/**
 * `text` as a named prepared statement: the server parses and plans it once per connection instead
 * of on every call (the one-statement append is a long CTE; its CPU shares the machine with ours).
 * Unnamed past a bound, so statements built with varying text cannot grow the cache without end.
 */
export function prepared(text: string, values: unknown[]): pg.QueryConfig {
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < MAX_NAMED_STATEMENTS) statementNames.set(text, (name = `esoz_${statementNames.size}`));
  return name === undefined ? { text, values } : { name, text, values };
}

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

/**
 * pg-pool's own `pool.query` hands a failed statement's error to `release(err)`, and a client released
 * with an error is destroyed: every refused statement (a 22003 of a checkpoint out of range, a
 * constraint violation) closed its connection. On PGlite that was the one connection of the pool, and
 * the socket server in front of it serves one connection at a time: the replacement connected before
 * the server had seen the old socket close, got "Too many connections", and unrelated requests queued
 * on it answered 503 (EPIPE). A statement the server refused leaves its connection in a good state, so
 * here `pool.query` releases the client without the error; a connection that is really broken is still
 * dropped (pg-pool removes a client that is no longer queryable, and the error listener below keeps
 * the process up).
 */
function keepConnectionsOnStatementErrors(pool: pg.Pool): void {
  const run = (client: pg.PoolClient, args: unknown[]): Promise<unknown> =>
    (client.query as unknown as (...given: unknown[]) => Promise<unknown>).apply(client, args);
  const query = async (...args: unknown[]): Promise<unknown> => {
    if (typeof args[args.length - 1] === 'function') throw new Error('pool.query with a callback is not supported');
    const client = await pool.connect();
    try {
      return await run(client, args);
    } finally {
      client.release();
    }
  };
  pool.query = query as unknown as typeof pool.query;
}

type Options = { kind: 'postgres' | 'pglite'; pool: pg.Pool; connection?: pg.ClientConfig; schema?: string; onClose?: () => Promise<void> };

const NEVER = new Promise<void>(() => undefined);

export function createDatabase({ kind, pool, connection, schema, onClose }: Options): Database {
  const heldInProcess = new Set<string>();
  const inProcess = new EventEmitter();
  inProcess.setMaxListeners(0);
  const qualified = (channel: string) => `esoz:${schema ?? 'public'}:${channel}`;
  const migrated = new Set<string>();
  // A lost connection must never crash the process: the query running on it rejects (and callers
  // back off), and the pool drops the broken client on release. pool.on('error') covers idle clients
  // only; 'connect' gives every client a listener for the time it is checked out too.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => void client.on('error', () => undefined));
  keepConnectionsOnStatementErrors(pool);

  return {
    kind,
    pool,
    withTransaction: (work) => withTransaction(pool, work),

    async tryLock(key) {
      if (kind === 'pglite') {
        // One connection, one process owns the data directory: an in-process lock is the whole truth.
        if (heldInProcess.has(key)) return null;
        heldInProcess.add(key);
        return { lost: NEVER, release: async () => void heldInProcess.delete(key) };
      }
      // Its own connection: the lock lives as long as that session, and holding it never takes a
      // connection away from requests.
      const client = new pg.Client(connection);
      let markLost: () => void = () => undefined;
      const lost = new Promise<void>((resolve) => (markLost = resolve));
      client.on('error', () => markLost());
      client.on('end', () => markLost());
      try {
        await client.connect();
        const { rows } = await client.query<{ locked: boolean }>(`select pg_try_advisory_lock(${LOCK_ID}) as locked`, [key]);
        if (!rows[0]?.locked) {
          await client.end();
          return null;
        }
      } catch (error) {
        await client.end().catch(() => undefined);
        throw error;
      }
      return {
        lost,
        // Ending the session releases its advisory locks.
        release: () => client.end().catch(() => undefined),
      };
    },

    async listen(channel, onMessage, options = {}) {
      const name = qualified(channel);
      const local = (payload: string) => onMessage(payload);
      if (kind === 'pglite' || !connection) {
        inProcess.on(name, local);
        return { close: async () => void inProcess.off(name, local) };
      }
      let closed = false;
      let client: pg.Client | null = null;
      let connectedOnce = false;
      const connect = async (delayMs: number): Promise<void> => {
        if (closed) return;
        const next = new pg.Client(connection);
        const reconnect = () => {
          if (client !== next || closed) return;
          client = null;
          setTimeout(() => void connect(Math.min(5_000, delayMs * 2)), delayMs).unref();
        };
        client = next;
        next.on('error', reconnect);
        next.on('end', reconnect);
        next.on('notification', (message) => message.channel === name && onMessage(message.payload ?? ''));
        try {
          await next.connect();
          await next.query(`listen "${name}"`);
          if (connectedOnce) options.onReconnect?.();
          connectedOnce = true;
        } catch {
          await next.end().catch(() => undefined);
          reconnect();
        }
      };
      await connect(200);
      return {
        async close() {
          closed = true;
          await client?.end().catch(() => undefined);
        },
      };
    },

    async notify(channel, payload) {
      if (kind === 'pglite' || !connection) return void inProcess.emit(qualified(channel), payload);
      await pool.query('select pg_notify($1, $2)', [qualified(channel), payload]);
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
  const connection: pg.ClientConfig = {
    connectionString,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
    // Names our sessions in pg_stat_activity (operators, and tests that cut exactly our connections).
    application_name: schema ? `esoz-registry/${schema}` : 'esoz-registry',
    // A database that does not answer must not hang a request: it fails (503) and is retried.
    connectionTimeoutMillis: 5_000,
    keepAlive: true,
  };
  const pool = new pg.Pool({ ...connection, max });
  return createDatabase({ kind: 'postgres', pool, connection, ...(schema ? { schema } : {}) });
}
