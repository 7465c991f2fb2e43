/**
 * PostgreSQL event store (also serves PGlite). Gap safety follows Emmett: every row records the
 * writing transaction's xid8, and the global log is read in (transaction_id, global_position) order,
 * only below pg_snapshot_xmin(pg_current_snapshot()) — so a transaction that took an earlier position
 * but commits later can never be skipped. The checkpoint is that same pair. There is no global
 * "last position" row: appends to different streams never wait for each other.
 */
import { EventEmitter } from 'node:events';
import type pg from 'pg';
import { combineWrites, prepared, writesAsCtes, type Database, type Sql } from '../database/database.js';
import {
  readWholeStream,
  WrongExpectedRevisionError,
  type AppendedRevision,
  type AppendResult,
  type EventStore,
  type EventToAppend,
  type ExpectedRevision,
  type Position,
  type ReadAllOptions,
  type ReadByStreamOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type StreamAppend,
  type SubscribeOptions,
  type Subscription,
  type TransactionalWrite,
} from './eventStore.js';
import { fromStoredMetadata, toStoredMetadata } from './storedMetadata.js';
import { runSubscriptionLoop } from './pollingSubscription.js';
import { chainAppend } from './hashChain.js';
import { chainUnhashedHistory } from './hashChainMigration.js';
import { repairLogOrder } from './logOrderRepair.js';
import type { Logger } from '../logger.js';

// data and metadata are `json`, not `jsonb`: the store never looks inside an event, and json keeps
// the text as written (canonical JSON, the bytes the hash chain covers), which the server only checks on
// the way in and sends back as is (no jsonb parse on append or import, no conversion on every read).
// A log created before keeps its jsonb columns and works the same, only slower to read and verify.
const eventStoreSchema = `
create sequence if not exists es_global_position;
create table if not exists es_streams (
  stream_name text primary key,
  revision bigint not null
);
create table if not exists es_events (
  global_position bigint not null default nextval('es_global_position'),
  transaction_id xid8 not null default pg_current_xact_id(),
  stream_name text not null,
  revision bigint not null,
  event_id uuid not null,
  event_type text not null,
  data json not null,
  metadata json not null,
  recorded_at timestamptz not null default clock_timestamp(),
  primary key (stream_name, revision)
);
create unique index if not exists es_events_event_id on es_events (event_id);
create index if not exists es_events_global_order on es_events (transaction_id, global_position);
alter table es_events add column if not exists prev_hash bytea, add column if not exists hash bytea;
-- Holds only rows written before the hash chain existed (none once chained), so every start's probe
-- for them is an index lookup: without it the probe read the whole log (0.25 s at 200k events).
create index if not exists es_events_unchained on es_events (stream_name, revision) where hash is null;
`;

const READ_PAGE = 500;
/** 5 ms against 0 in one bench run: 1 client 8.8 → 7.1 statements and 5.5 → 4.5 ms of server CPU per Stop. */
const BATCH_WINDOW_MS = 5;
/** Streams whose last hash the store remembers (see `lastHashes`). */
const LAST_HASHES = 10_000;
/** The message of the one-statement append's failing cast when a stream's revision moved. */
const CONFLICT_MARK = 'es_wrong_expected_revision';
const VISIBLE = 'transaction_id < pg_snapshot_xmin(pg_current_snapshot())';

type EventRow = {
  global_position: string;
  xid: string;
  stream_name: string;
  revision: string;
  event_type: string;
  data: RecordedEvent['data'];
  metadata: RecordedEvent['metadata'];
  prev_hash: string | null;
  hash: string | null;
};
// The xid8 goes out as text under its own alias: an alias named transaction_id would capture
// `order by transaction_id` and sort the log as text (10000 before 9999), skipping events.
const COLUMNS = `global_position, transaction_id::text as xid, stream_name, revision, event_type, data, metadata,
  encode(prev_hash, 'hex') as prev_hash, encode(hash, 'hex') as hash`;
/** A bulk load's columns: the projections it feeds never look at the hash chain. */
const BULK_COLUMNS = 'global_position, transaction_id::text as xid, stream_name, revision, event_type, data, metadata, null as prev_hash, null as hash';
const LOG_ORDER = 'es_events.transaction_id, es_events.global_position';
const READ_STREAM_SQL = `select ${COLUMNS} from es_events where stream_name = $1 and revision >= $2 order by revision limit $3`;
const READ_STREAMS_SQL = `select ${COLUMNS} from es_events where stream_name = any($1::text[]) order by stream_name, revision limit $2`;
/** One page of the global log after ($1 xid, $2 position), $3 rows: an index range scan, no sort. */
export const READ_ALL_SQL = `select ${COLUMNS} from es_events
  where (transaction_id, global_position) > ($1::text::xid8, $2::bigint) and ${VISIBLE}
  order by ${LOG_ORDER} limit $3`;

/**
 * Stream order over the primary key, bounded by a log position ($3 xid, $4 position) a reader has
 * seen; $6: LIKE patterns of the streams wanted (null: all).
 */
export const READ_BY_STREAM_SQL = `select ${BULK_COLUMNS} from es_events
  where (stream_name, revision) > ($1, $2::bigint) and (transaction_id, global_position) <= ($3::text::xid8, $4::bigint)
    and ($6::text[] is null or stream_name like any($6::text[]))
  order by stream_name, revision limit $5`;
/**
 * The plan READ_BY_STREAM_SQL must get: a walk of the primary key, whatever the statistics say. Without
 * them (a freshly imported log, before autovacuum's analyze) the planner picks the position index and
 * sorts the whole log for every page: 1.1 s per 5,000-event page at 200k events, quadratic in the log.
 */
export const STREAM_ORDER_PLAN = 'set local enable_sort = off';
const likePrefix = (prefix: string) => `${prefix.replace(/[\\%_]/g, '\\$&')}%`;

const toPosition = (transactionId: string, globalPosition: string): Position => `${transactionId}:${globalPosition}`;
/** xid8 is an unsigned 64-bit integer, global_position a bigint: beyond them the database refuses the cast (22003). */
const MAX_XID8 = 2n ** 64n - 1n;
const MAX_BIGINT = 2n ** 63n - 1n;
const parsePosition = (position: Position): [bigint, bigint] => {
  const match = /^(\d{1,20}):(\d{1,19})$/.exec(position);
  const xid = match ? BigInt(match[1]!) : -1n;
  const global = match ? BigInt(match[2]!) : -1n;
  if (xid < 0n || xid > MAX_XID8 || global < 0n || global > MAX_BIGINT) throw new Error(`Not a PostgreSQL event store position: ${position}`);
  return [xid, global];
};
const toEvent = (row: EventRow): RecordedEvent => ({
  type: row.event_type,
  data: row.data,
  metadata: fromStoredMetadata(row.metadata),
  streamName: row.stream_name,
  revision: BigInt(row.revision),
  position: toPosition(row.xid, row.global_position),
  ...(row.hash !== null && row.prev_hash !== null ? { prevHash: row.prev_hash, hash: row.hash } : {}),
});

const INSERT_SQL = `insert into es_events (stream_name, revision, event_id, event_type, data, metadata)
  select $1, $2::bigint + t.ord - 1, t.event_id, t.event_type, t.data, t.metadata
  from unnest($3::uuid[], $4::text[], $5::json[], $6::json[]) with ordinality as t(event_id, event_type, data, metadata, ord)
  order by t.ord
  returning global_position, transaction_id::text as xid`;
/** INSERT_SQL with the events' hash-chain links (hex, computed by the caller). */
const CHAINED_INSERT_SQL = `insert into es_events (stream_name, revision, event_id, event_type, data, metadata, prev_hash, hash)
  select $1, $2::bigint + t.ord - 1, t.event_id, t.event_type, t.data, t.metadata, decode(t.prev_hash, 'hex'), decode(t.hash, 'hex')
  from unnest($3::uuid[], $4::text[], $5::json[], $6::json[], $7::text[], $8::text[]) with ordinality
    as t(event_id, event_type, data, metadata, prev_hash, hash, ord)
  order by t.ord
  returning global_position, transaction_id::text as xid`;

export type PostgresEventStore = EventStore & {
  /** Appends inside a caller's transaction (the caller commits). Used by the out-of-order-commit test. */
  appendInTransaction(client: pg.PoolClient, streamName: string, events: EventToAppend[], expectedRevision: ExpectedRevision): Promise<AppendResult>;
  /** Tells local subscribers to look now (the caller committed an append made in its own transaction). */
  notifyAppended(): void;
  /**
   * Appends to several streams in one transaction, in order; `alsoWrite` gives the writes that commit
   * with them (inline projections, a job's outcome), sent as one statement after the appends. A wrong
   * expected revision on any stream rolls back everything.
   */
  appendAtomically(appends: StreamAppend[], alsoWrite?: (revisions: AppendedRevision[]) => TransactionalWrite[]): Promise<AppendResult[]>;
};

export type PostgresEventStoreOptions = {
  pollIntervalMs?: number;
  logger?: Logger;
  /** How long a subscription waits after a local append before it reads (see runSubscriptionLoop). */
  batchWindowMs?: number;
  /** false only in the benchmark, to measure what the hash chain costs (never in an installation). */
  hashChain?: boolean;
};

export async function createPostgresEventStore(database: Database, options: PostgresEventStoreOptions = {}): Promise<PostgresEventStore> {
  await database.migrate('event_store', eventStoreSchema);
  // Before anything reads or appends: a log restored or moved from another cluster is put back in order.
  await repairLogOrder(database, options.logger);
  await chainUnhashedHistory(database, options.logger);
  const hashing = options.hashChain ?? true;
  const appended = new EventEmitter();
  appended.setMaxListeners(0);
  const pollIntervalMs = options.pollIntervalMs ?? 100;
  const batchWindowMs = options.batchWindowMs ?? BATCH_WINDOW_MS;

  // With the chain, the first statement also returns the stream's last hash (its new revision minus the
  // count is the event before this append): an index lookup in RETURNING, no extra round trip.
  const PREV_HASH = hashing
    ? `, (select encode(e.hash, 'hex') from es_events e where e.stream_name = $1 and e.revision = es_streams.revision - $3) as prev_hash`
    : '';
  type Reserved = { revision: string; prev_hash?: string | null };
  async function reserveRevisions(
    client: Sql,
    streamName: string,
    count: number,
    expected: ExpectedRevision,
  ): Promise<{ last: bigint; prevHash: string | null }> {
    // Returns the stream's new last revision; the stream row lock serialises writers of one stream only.
    const n = BigInt(count);
    if (expected === 'no_stream') {
      const { rows } = await client.query<{ revision: string }>(
        'insert into es_streams (stream_name, revision) values ($1, $2) on conflict do nothing returning revision',
        [streamName, String(n - 1n)],
      );
      if (rows.length === 0) throw new WrongExpectedRevisionError(streamName, expected, await currentRevision(client, streamName));
      return { last: n - 1n, prevHash: null };
    }
    if (expected === 'any') {
      const { rows } = await client.query<Reserved>(
        `insert into es_streams (stream_name, revision) values ($1, $2)
         on conflict (stream_name) do update set revision = es_streams.revision + $3 returning revision${PREV_HASH}`,
        [streamName, String(n - 1n), String(n)],
      );
      return { last: BigInt(rows[0]!.revision), prevHash: rows[0]!.prev_hash ?? null };
    }
    const { rows } = await client.query<Reserved>(
      `update es_streams set revision = revision + $3 where stream_name = $1 and revision = $2 returning revision${PREV_HASH}`,
      [streamName, String(expected), String(n)],
    );
    if (rows.length === 0) throw new WrongExpectedRevisionError(streamName, expected, await currentRevision(client, streamName));
    return { last: BigInt(rows[0]!.revision), prevHash: rows[0]!.prev_hash ?? null };
  }

  async function currentRevision(client: Sql, streamName: string): Promise<bigint | 'no_stream'> {
    const { rows } = await client.query<{ revision: string }>('select revision from es_streams where stream_name = $1', [streamName]);
    return rows[0] ? BigInt(rows[0].revision) : 'no_stream';
  }

  async function appendInTransaction(
    client: pg.PoolClient,
    streamName: string,
    events: EventToAppend[],
    expectedRevision: ExpectedRevision,
  ): Promise<AppendResult> {
    if (events.length === 0) throw new Error('Nothing to append');
    const { last, prevHash } = await reserveRevisions(client, streamName, events.length, expectedRevision);
    const first = last - BigInt(events.length) + 1n;
    const head = [streamName, String(first), events.map((e) => e.metadata.eventId), events.map((e) => e.type)];
    if (!hashing) {
      const texts = [events.map((e) => JSON.stringify(e.data)), events.map((e) => JSON.stringify(toStoredMetadata(e.metadata)))];
      const { rows } = await client.query<{ global_position: string; xid: string }>(INSERT_SQL, [...head, ...texts]);
      return appendResult(rows, last);
    }
    // The chain links, computed here under the stream's row lock from the hash the first statement
    // returned; data and metadata are stored as the canonical texts the hashes cover.
    const links = chainAppend(
      streamName,
      first,
      prevHash,
      events.map((e) => ({ type: e.type, data: e.data, metadata: toStoredMetadata(e.metadata) })),
    );
    const { rows } = await client.query<{ global_position: string; xid: string }>(CHAINED_INSERT_SQL, [
      ...head,
      links.map((l) => l.data),
      links.map((l) => l.metadata),
      links.map((l) => l.prevHash),
      links.map((l) => l.hash),
    ]);
    return appendResult(rows, last);
  }

  // The hash of each stream's last event as last read or written here (committed): (stream, revision)
  // names one immutable event, so an entry is right whenever an append's expected revision equals its
  // revision. A command reads its stream just before it appends, so the entry is there.
  const lastHashes = new Map<string, { revision: bigint; hash: string }>();
  const rememberHash = (streamName: string, revision: bigint, hash: string | undefined) => {
    lastHashes.delete(streamName);
    if (hash === undefined) return;
    lastHashes.set(streamName, { revision, hash });
    if (lastHashes.size > LAST_HASHES) lastHashes.delete(lastHashes.keys().next().value!);
  };
  /** The previous event's hash for an append, when known without asking the database; undefined: ask. */
  const knownPrevHash = ({ streamName, expectedRevision }: StreamAppend): string | null | undefined => {
    // PGlite's socket server drops the connection when a statement fails outside a transaction, and
    // the one-statement append reports a conflict by failing: PGlite keeps the transaction.
    if (database.kind !== 'postgres' || expectedRevision === 'any') return undefined;
    if (expectedRevision === 'no_stream') return null;
    if (!hashing) return null;
    const last = lastHashes.get(streamName);
    return last?.revision === expectedRevision ? last.hash : undefined;
  };

  /**
   * Every stream's revision, every event and the side writes as ONE statement (data-modifying CTEs; a
   * single statement commits atomically on its own): one round trip instead of BEGIN, two per stream,
   * the side writes and COMMIT — each costs the server's process ~0.15 ms of CPU on this kind of machine.
   * Possible when every append's previous hash is known here (`knownPrevHash`). The events go in only
   * when every stream took its new revision; otherwise the statement fails (the final cast) and rolls
   * back the side writes, and the conflict is reported as the transactional path reports it.
   */
  async function appendInOneStatement(
    appends: StreamAppend[],
    prevHashes: Array<string | null>,
    alsoWrite?: (revisions: AppendedRevision[]) => TransactionalWrite[],
  ): Promise<AppendResult[]> {
    const values: unknown[] = [];
    const param = (value: unknown) => `$${values.push(value)}`;
    const revisions = appends.map(({ events, expectedRevision }) => ({
      first: expectedRevision === 'no_stream' ? 0n : (expectedRevision as bigint) + 1n,
      nextExpectedRevision: (expectedRevision === 'no_stream' ? -1n : (expectedRevision as bigint)) + BigInt(events.length),
    }));
    const reservations = appends.map(({ streamName, expectedRevision }, i) => {
      const last = String(revisions[i]!.nextExpectedRevision);
      return expectedRevision === 'no_stream'
        ? `r${i} as (insert into es_streams (stream_name, revision) values (${param(streamName)}, ${param(last)}::bigint) on conflict do nothing returning 1)`
        : `r${i} as (update es_streams set revision = ${param(last)}::bigint where stream_name = ${param(streamName)} and revision = ${param(String(expectedRevision))}::bigint returning 1)`;
    });
    const rows = appends.flatMap(({ streamName, events }, i) => {
      const links = hashing
        ? chainAppend(
            streamName,
            revisions[i]!.first,
            prevHashes[i]!,
            events.map((e) => ({ type: e.type, data: e.data, metadata: toStoredMetadata(e.metadata) })),
          )
        : null;
      return events.map((e, j) => ({ streamName, revision: String(revisions[i]!.first + BigInt(j)), event: e, link: links?.[j] ?? null }));
    });
    const reserved = `(${appends.map((_, i) => `(select count(*) from r${i})`).join(' + ')})`;
    const insert = `ev as (insert into es_events (stream_name, revision, event_id, event_type, data, metadata, prev_hash, hash)
      select t.stream_name, t.revision, t.event_id, t.event_type, t.data, t.metadata, decode(t.prev_hash, 'hex'), decode(t.hash, 'hex')
      from unnest(${param(rows.map((r) => r.streamName))}::text[], ${param(rows.map((r) => r.revision))}::bigint[], ${param(rows.map((r) => r.event.metadata.eventId))}::uuid[],
        ${param(rows.map((r) => r.event.type))}::text[], ${param(rows.map((r) => r.link?.data ?? JSON.stringify(r.event.data)))}::json[],
        ${param(rows.map((r) => r.link?.metadata ?? JSON.stringify(toStoredMetadata(r.event.metadata))))}::json[],
        ${param(rows.map((r) => r.link?.prevHash ?? null))}::text[], ${param(rows.map((r) => r.link?.hash ?? null))}::text[]) with ordinality
        as t(stream_name, revision, event_id, event_type, data, metadata, prev_hash, hash, ord)
      where ${reserved} = ${appends.length}
      order by t.ord
      returning stream_name, global_position, transaction_id::text as xid)`;
    const sideWrites = writesAsCtes(alsoWrite?.(revisions) ?? [], values);
    // Not constant, so the planner cannot fold the failing cast; selected, so it is never pruned, and
    // evaluated even when ev is empty (the left join keeps its row).
    const check = `(case when ${reserved} = ${appends.length} then null else '${CONFLICT_MARK} ' || ${reserved} end)::int`;
    const text = `with ${[...reservations, insert, ...sideWrites].join(',\n')}
      select c.conflict, ev.stream_name, ev.global_position, ev.xid from (select ${check} as conflict) c left join ev on true`;
    let result: pg.QueryResult<{ stream_name: string | null; global_position: string; xid: string }>;
    try {
      result = await database.pool.query(prepared(text, values));
    } catch (error) {
      // Not `instanceof Error`: under jest the driver's errors come from another realm.
      if (!String((error as { message?: unknown } | null)?.message).includes(CONFLICT_MARK)) throw error;
      for (const { streamName, expectedRevision } of appends) {
        const actual = await currentRevision(database.pool, streamName);
        if (actual !== expectedRevision) throw new WrongExpectedRevisionError(streamName, expectedRevision, actual);
      }
      throw new WrongExpectedRevisionError(appends[0]!.streamName, appends[0]!.expectedRevision, 'unknown');
    }
    return appends.map(({ streamName }, i) => {
      const own = result.rows.filter((row) => row.stream_name === streamName);
      const last = rows.filter((r) => r.streamName === streamName).at(-1)!;
      if (last.link) rememberHash(streamName, revisions[i]!.nextExpectedRevision, last.link.hash);
      return appendResult(own, revisions[i]!.nextExpectedRevision);
    });
  }

  function appendResult(rows: Array<{ global_position: string; xid: string }>, last: bigint): AppendResult {
    const lastRow = rows.reduce((a, b) => (BigInt(a.global_position) > BigInt(b.global_position) ? a : b));
    return { nextExpectedRevision: last, position: toPosition(lastRow.xid, lastRow.global_position) };
  }

  async function readAll({ after, maxCount }: ReadAllOptions): Promise<RecordedEvent[]> {
    const [xid, pos] = after ? parsePosition(after) : [0n, 0n];
    const { rows } = await database.pool.query<EventRow>(READ_ALL_SQL, [String(xid), String(pos), maxCount]);
    return rows.map(toEvent);
  }

  const store: PostgresEventStore = {
    kind: database.kind,

    async appendToStream(streamName, events, { expectedRevision }) {
      if (events.length > 0 && knownPrevHash({ streamName, events, expectedRevision }) !== undefined)
        return (await store.appendAtomically([{ streamName, events, expectedRevision }]))[0]!;
      const result = await database.withTransaction((client) => appendInTransaction(client, streamName, events, expectedRevision));
      appended.emit('appended');
      return result;
    },

    appendInTransaction,

    async appendAtomically(appends, alsoWrite) {
      const prevHashes = appends.map(knownPrevHash);
      if (
        appends.length > 0 &&
        appends.every((a) => a.events.length > 0) &&
        new Set(appends.map((a) => a.streamName)).size === appends.length &&
        prevHashes.every((h) => h !== undefined)
      ) {
        const results = await appendInOneStatement(appends, prevHashes as Array<string | null>, alsoWrite);
        appended.emit('appended');
        return results;
      }
      const results = await database.withTransaction(async (client) => {
        const done: AppendResult[] = [];
        for (const { streamName, events, expectedRevision } of appends) done.push(await appendInTransaction(client, streamName, events, expectedRevision));
        const writes = alsoWrite?.(done) ?? [];
        if (writes.length > 0) {
          const { text, values } = combineWrites(writes);
          await client.query(text, values);
        }
        return done;
      });
      appended.emit('appended');
      return results;
    },

    notifyAppended: () => void appended.emit('appended'),

    async *readStream(streamName: string, { fromRevision = 0n, maxCount = Number.MAX_SAFE_INTEGER }: ReadStreamOptions = {}) {
      let next = fromRevision;
      let left = maxCount;
      while (left > 0) {
        const values = [streamName, String(next), Math.min(READ_PAGE, left)];
        // Every command reads its stream: prepared once per connection on a PostgreSQL server.
        const { rows } = await database.pool.query<EventRow>(
          database.kind === 'postgres' ? prepared(READ_STREAM_SQL, values) : { text: READ_STREAM_SQL, values },
        );
        const lastRow = rows.at(-1);
        if (lastRow) rememberHash(streamName, BigInt(lastRow.revision), lastRow.hash ?? undefined);
        for (const row of rows) yield toEvent(row);
        if (rows.length < READ_PAGE) return;
        left -= rows.length;
        next = BigInt(rows[rows.length - 1]!.revision) + 1n;
      }
    },

    async readStreams(streamNames: readonly string[]) {
      const values = [streamNames, READ_PAGE];
      const { rows } = await database.pool.query<EventRow>(
        database.kind === 'postgres' ? prepared(READ_STREAMS_SQL, values) : { text: READ_STREAMS_SQL, values },
      );
      const read = new Map<string, RecordedEvent[]>(streamNames.map((name) => [name, []]));
      if (rows.length === READ_PAGE) {
        // Longer than a page together (never for a command's streams): each stream in pages.
        for (const name of streamNames) read.set(name, await readWholeStream(store, name));
        return read;
      }
      for (const row of rows) read.get(row.stream_name)!.push(toEvent(row));
      for (const [name, events] of read) {
        const last = events.at(-1);
        if (last) rememberHash(name, last.revision, last.hash);
      }
      return read;
    },

    readAll,

    async readByStream({ after, until, maxCount, streamPrefixes }: ReadByStreamOptions) {
      const [xid, pos] = parsePosition(until);
      const rows = await database.withTransaction(async (client) => {
        await client.query(STREAM_ORDER_PLAN);
        // '' sorts before every stream name; revision -1 before every revision.
        const result = await client.query<EventRow>(READ_BY_STREAM_SQL, [
          after?.streamName ?? '',
          String(after?.revision ?? -1n),
          String(xid),
          String(pos),
          maxCount,
          streamPrefixes ? streamPrefixes.map(likePrefix) : null,
        ]);
        return result.rows;
      });
      return rows.map(toEvent);
    },

    async hasEventsAfter(sql: Sql, after: Position | null, streamPrefixes?: readonly string[]) {
      const [xid, pos] = after ? parsePosition(after) : [0n, 0n];
      const { rows } = await sql.query<{ found: boolean }>(
        `select exists (select 1 from es_events where (transaction_id, global_position) > ($1::text::xid8, $2::bigint)
           and ($3::text[] is null or stream_name like any($3::text[]))) as found`,
        [String(xid), String(pos), streamPrefixes ? streamPrefixes.map(likePrefix) : null],
      );
      return rows[0]!.found;
    },

    subscribe(options: SubscribeOptions): Subscription {
      return runSubscriptionLoop({ ...options, readAll, pollIntervalMs, appended, batchWindowMs });
    },

    async headPosition() {
      const { rows } = await database.pool.query<{ xid: string; global_position: string }>(
        `select transaction_id::text as xid, global_position from es_events where ${VISIBLE}
         order by es_events.transaction_id desc, es_events.global_position desc limit 1`,
      );
      return rows[0] ? toPosition(rows[0].xid, rows[0].global_position) : null;
    },

    async countAfter(after) {
      const [xid, pos] = after ? parsePosition(after) : [0n, 0n];
      const { rows } = await database.pool.query<{ n: string }>(
        `select count(*) as n from es_events where (transaction_id, global_position) > ($1::text::xid8, $2::bigint) and ${VISIBLE}`,
        [String(xid), String(pos)],
      );
      return Number(rows[0]!.n);
    },

    comparePositions(a, b) {
      const [ax, ap] = parsePosition(a);
      const [bx, bp] = parsePosition(b);
      return ax === bx ? (ap === bp ? 0 : ap < bp ? -1 : 1) : ax < bx ? -1 : 1;
    },

    async close() {
      appended.emit('appended');
    },
  };
  return store;
}
