/**
 * Signed anchors over the whole log (issue 16). Every AUDIT_ANCHOR_INTERVAL_SECONDS the anchorer reads
 * the log after the last anchor's coverage; once AUDIT_ANCHOR_EVERY_EVENTS events have come (or when
 * asked, `cli anchor`), it appends to the audit stream an anchor: the Merkle root over every stream's head,
 * the part of the log it covers, the time, the previous anchor's hash, signed (anchorRecord.ts).
 *
 * One process at a time (advisory lock). The heads the latest anchor signed are kept in
 * audit_anchor_heads (leaf order = first appearance in the log), written in the same transaction as
 * the anchor on PostgreSQL/PGlite, so a proof (GET …/proof) always matches the latest anchor. So is the
 * Merkle tree itself (audit_merkle_nodes): an anchor hashes and writes only the paths above the streams
 * that moved, and a proof reads one path — O(log n) — instead of the whole tree being rebuilt over every
 * stream of a national registry for each anchor and each proof.
 */
import { uuidv7 } from '../shared/uuidv7.js';
import type pg from 'pg';
import type { Database } from '../database/database.js';
import type { EventStore, EventToAppend, ExpectedRevision, RecordedEvent } from '../eventStore/eventStore.js';
import type { PostgresEventStore } from '../eventStore/postgresEventStore.js';
import type { Logger } from '../logger.js';
import { createOutage } from '../shared/outage.js';
import { ANCHOR_EVENT_TYPE, AUDIT_STREAM, anchorDataSchema, signAnchor, type AnchorData, type AnchorSigningKey, type SignedAnchor } from './anchorRecord.js';
import { allNodes, leafHash, MerkleTree, pathPlaces, updatePaths, type MerklePathStep, type TreeNode } from './merkle.js';

const SCHEMA = `
create table if not exists audit_anchor_heads (
  stream_name text primary key,
  leaf_index integer not null unique,
  revision bigint not null,
  hash text not null
);
create table if not exists audit_anchor_state (
  id integer primary key default 1 check (id = 1),
  position text not null,
  event_count bigint not null,
  last_event_id text not null,
  anchor_revision bigint not null,
  anchor_hash text not null
);
create table if not exists audit_merkle_nodes (
  level smallint not null,
  idx integer not null,
  hash bytea not null,
  primary key (level, idx)
);
-- The number of leaves of the stored tree; null: anchors written before the tree was stored (built once).
alter table audit_anchor_state add column if not exists streams bigint;
`;

/** An anchor never covers more than this many events (its `changed` list stays small); catch-up writes several. */
export const MAX_EVENTS_PER_ANCHOR = 10_000;
const PAGE = 1_000;

type State = { position: string; eventCount: number; lastEventId: string; anchorRevision: bigint; anchorHash: string; streams: number | null };
type Head = { index: number; revision: number; hash: string };

export type AnchorSettings = { everyEvents: number; intervalSeconds: number };

export type Anchorer = {
  /** Runs now: writes anchors while enough events are pending (`force`: while any event but an anchor is). */
  anchor(options?: { force?: boolean }): Promise<number>;
  start(): void;
  stop(): Promise<void>;
};

export async function createAnchorTables(database: Database): Promise<void> {
  await database.migrate('audit_anchors', SCHEMA);
}

async function readState(sql: Database['pool'] | pg.PoolClient): Promise<State | null> {
  const { rows } = await sql.query<{
    position: string;
    event_count: string;
    last_event_id: string;
    anchor_revision: string;
    anchor_hash: string;
    streams: string | null;
  }>('select position, event_count, last_event_id, anchor_revision, anchor_hash, streams from audit_anchor_state');
  const row = rows[0];
  return row
    ? {
        position: row.position,
        eventCount: Number(row.event_count),
        lastEventId: row.last_event_id,
        anchorRevision: BigInt(row.anchor_revision),
        anchorHash: row.anchor_hash,
        streams: row.streams === null ? null : Number(row.streams),
      }
    : null;
}

/** The heads the latest anchor signed: of `streams` only, or every one. */
async function readHeads(sql: Database['pool'] | pg.PoolClient, streams?: string[]): Promise<Map<string, Head>> {
  const { rows } = await sql.query<{ stream_name: string; leaf_index: number; revision: string; hash: string }>(
    `select stream_name, leaf_index, revision, hash from audit_anchor_heads ${streams ? 'where stream_name = any($1)' : ''} order by leaf_index`,
    streams ? [streams] : [],
  );
  return new Map(rows.map((r) => [r.stream_name, { index: r.leaf_index, revision: Number(r.revision), hash: r.hash }]));
}

const leafOf = (stream: string, head: Head) => leafHash({ stream, revision: head.revision, hash: head.hash });

/** Nodes of the stored tree, one level's worth in one read. */
const fetchNodes =
  (sql: Database['pool'] | pg.PoolClient) =>
  async (level: number, indexes: number[]): Promise<Map<number, Buffer>> => {
    const { rows } = await sql.query<{ idx: number; hash: Buffer }>('select idx, hash from audit_merkle_nodes where level = $1 and idx = any($2::int[])', [
      level,
      indexes,
    ]);
    return new Map(rows.map((r) => [r.idx, r.hash]));
  };

/** Writes tree nodes (a whole tree: after clearing the old one), in slices so no statement gets huge. */
async function saveNodes(client: pg.PoolClient, nodes: TreeNode[], whole: boolean): Promise<void> {
  if (whole) await client.query('delete from audit_merkle_nodes');
  for (let i = 0; i < nodes.length; i += 20_000) {
    const slice = nodes.slice(i, i + 20_000);
    await client.query(
      `insert into audit_merkle_nodes (level, idx, hash) select * from unnest($1::smallint[], $2::int[], $3::bytea[])
       on conflict (level, idx) do update set hash = excluded.hash`,
      [slice.map((n) => n.level), slice.map((n) => n.index), slice.map((n) => n.hash)],
    );
  }
}

async function lastEventOf(store: EventStore, stream: string): Promise<RecordedEvent | null> {
  let last: RecordedEvent | null = null;
  for await (const event of store.readStream(stream)) last = event;
  return last;
}

export function createAnchorer(deps: {
  database: Database;
  eventStore: EventStore;
  key: AnchorSigningKey;
  settings: AnchorSettings;
  logger: Logger;
  clock?: () => Date;
}): Anchorer {
  const { database, eventStore, key, settings, logger } = deps;
  const clock = deps.clock ?? (() => new Date());
  const outage = createOutage(logger.child({ component: 'anchors' }), 'history anchors');
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<number> | null = null;

  /**
   * Where the anchors stand: the stored state, or (a store imported with its anchors) rebuilt from the
   * log. `heads` holds every head only when they were rebuilt or the stored tree is still to be built
   * (`whole`); otherwise the heads of the streams an anchor touches are read as needed.
   */
  async function currentState(): Promise<{ state: State | null; heads: Map<string, Head>; rebuilt: boolean; whole: boolean }> {
    const state = await readState(database.pool);
    // A state behind the audit stream (an anchor whose heads were not saved: a crash on EventStoreDB) is rebuilt.
    let behind = false;
    if (state) for await (const _ of eventStore.readStream(AUDIT_STREAM, { fromRevision: state.anchorRevision + 1n, maxCount: 1 })) behind = true;
    if (state && !behind)
      return state.streams === null
        ? { state, heads: await readHeads(database.pool), rebuilt: false, whole: true }
        : { state, heads: new Map(), rebuilt: false, whole: false };
    const heads = new Map<string, Head>();
    const lastAnchor = await lastEventOf(eventStore, AUDIT_STREAM);
    if (!lastAnchor) return { state: null, heads, rebuilt: true, whole: true };
    // Resume after the imported anchors: rebuild the heads up to the last one's coverage.
    const anchor = anchorDataSchema.parse(lastAnchor.data);
    let after: string | null = null;
    let count = 0;
    for (;;) {
      const page = await eventStore.readAll({ after, maxCount: PAGE });
      if (page.length === 0) throw new Error(`the last anchor covers event ${anchor.covers.last_event_id}, which is not in the log`);
      for (const event of page) {
        count += 1;
        apply(heads, heads.size, event);
        if (event.metadata.eventId === anchor.covers.last_event_id) {
          const resumed: State = {
            position: event.position,
            eventCount: count,
            lastEventId: event.metadata.eventId,
            anchorRevision: lastAnchor.revision,
            anchorHash: lastAnchor.hash!,
            streams: heads.size,
          };
          return { state: resumed, heads, rebuilt: true, whole: true };
        }
      }
      after = page[page.length - 1]!.position;
    }
  }

  /** Moves `event`'s stream head; a stream not in `heads` is new and takes leaf `nextIndex`. Returns whether it was new. */
  function apply(heads: Map<string, Head>, nextIndex: number, event: RecordedEvent): boolean {
    if (event.hash === undefined) throw new Error(`event ${event.metadata.eventId} of ${event.streamName} has no hash: the store keeps no hash chain`);
    const known = heads.get(event.streamName);
    heads.set(event.streamName, { index: known?.index ?? nextIndex, revision: Number(event.revision), hash: event.hash });
    return known === undefined;
  }

  /** One anchor if due; returns whether one was written. */
  async function anchorOnce(force: boolean): Promise<boolean> {
    const { state, heads, rebuilt, whole } = await currentState();
    const pending: RecordedEvent[] = [];
    let after = state?.position ?? null;
    while (pending.length < MAX_EVENTS_PER_ANCHOR) {
      const page = await eventStore.readAll({ after, maxCount: Math.min(PAGE, MAX_EVENTS_PER_ANCHOR - pending.length) });
      if (page.length === 0) break;
      pending.push(...page);
      after = page[page.length - 1]!.position;
    }
    // Only anchors since the last anchor: nothing new to vouch for (else anchors would anchor each other forever).
    if (!pending.some((e) => e.streamName !== AUDIT_STREAM)) return false;
    if (!force && pending.length < settings.everyEvents) return false;

    // Only the heads of the streams these events move (every head when they are all in memory anyway).
    if (!whole) for (const [stream, head] of await readHeads(database.pool, [...new Set(pending.map((e) => e.streamName))])) heads.set(stream, head);
    let streams = whole ? heads.size : state!.streams!;
    const changed = new Map<string, Head>();
    for (const event of pending) {
      if (apply(heads, streams, event)) streams += 1;
      changed.set(event.streamName, heads.get(event.streamName)!);
    }
    // The tree: from scratch once (an imported history, or anchors from before the tree was stored), else
    // only the paths above the changed leaves, their siblings read from the stored tree.
    const tree = whole
      ? allNodes([...heads].sort(([, a], [, b]) => a.index - b.index).map(([stream, head]) => leafOf(stream, head)))
      : await updatePaths(streams, new Map([...changed].map(([stream, head]) => [head.index, leafOf(stream, head)])), fetchNodes(database.pool));
    const last = pending[pending.length - 1]!;
    const signed: SignedAnchor = {
      version: 1,
      covers: { event_count: (state?.eventCount ?? 0) + pending.length, last_event_id: last.metadata.eventId, position: last.position },
      streams,
      merkle_root: tree.root!.toString('hex'),
      anchored_at: clock().toISOString(),
      prev_anchor_hash: state?.anchorHash ?? null,
    };
    const data: AnchorData = { ...signed, changed: [...changed].map(([stream, h]) => [stream, h.revision, h.hash]), jws: await signAnchor(signed, key) };
    const event: EventToAppend = {
      type: ANCHOR_EVENT_TYPE,
      data,
      metadata: {
        eventId: uuidv7(),
        correlationId: `anchor-${signed.covers.event_count}`,
        causationId: null,
        userId: null,
        clientId: null,
        occurredAt: signed.anchored_at,
        schemaVersion: 1,
      },
    };
    const expected: ExpectedRevision = state ? state.anchorRevision : 'no_stream';
    // Rebuilt from the log: every head is written, not only those that moved.
    const saved = rebuilt ? heads : changed;
    const save = async (client: pg.PoolClient, anchorRevision: bigint, anchorHash: string) => {
      await client.query(
        `insert into audit_anchor_heads (stream_name, leaf_index, revision, hash)
         select * from unnest($1::text[], $2::int[], $3::bigint[], $4::text[])
         on conflict (stream_name) do update set revision = excluded.revision, hash = excluded.hash`,
        [
          [...saved.keys()],
          [...saved.values()].map((h) => h.index),
          [...saved.values()].map((h) => String(h.revision)),
          [...saved.values()].map((h) => h.hash),
        ],
      );
      await saveNodes(client, tree.nodes, whole);
      await client.query(
        `insert into audit_anchor_state (id, position, event_count, last_event_id, anchor_revision, anchor_hash, streams) values (1, $1, $2, $3, $4, $5, $6)
         on conflict (id) do update set position = $1, event_count = $2, last_event_id = $3, anchor_revision = $4, anchor_hash = $5, streams = $6`,
        [signed.covers.position, signed.covers.event_count, signed.covers.last_event_id, String(anchorRevision), anchorHash, streams],
      );
    };
    const hashOf = async (revision: bigint) => {
      for await (const written of eventStore.readStream(AUDIT_STREAM, { fromRevision: revision, maxCount: 1 })) return written.hash!;
      throw new Error('the anchor just written cannot be read back');
    };
    if ('appendInTransaction' in eventStore) {
      // PostgreSQL/PGlite: the anchor and the heads it signed commit together.
      const pgStore = eventStore as PostgresEventStore;
      await database.withTransaction(async (client) => {
        const { nextExpectedRevision } = await pgStore.appendInTransaction(client, AUDIT_STREAM, [event], expected);
        const { rows } = await client.query<{ hash: string }>(`select encode(hash, 'hex') as hash from es_events where stream_name = $1 and revision = $2`, [
          AUDIT_STREAM,
          String(nextExpectedRevision),
        ]);
        await save(client, nextExpectedRevision, rows[0]!.hash);
      });
      pgStore.notifyAppended();
    } else {
      // Another event store: the anchor first; a crash before the heads are saved means the next run
      // re-reads the same events (and this anchor) from the saved state.
      const { nextExpectedRevision } = await eventStore.appendToStream(AUDIT_STREAM, [event], { expectedRevision: expected });
      const hash = await hashOf(nextExpectedRevision);
      await database.withTransaction((client) => save(client, nextExpectedRevision, hash));
    }
    logger.info({ covers: signed.covers, streams: signed.streams, merkle_root: signed.merkle_root }, 'history anchored');
    return true;
  }

  async function anchor({ force = false } = {}): Promise<number> {
    await createAnchorTables(database);
    const lock = await database.tryLock('audit:anchors');
    if (!lock) return 0;
    try {
      let written = 0;
      // Catch-up after a long pause (or a fresh migration) writes several anchors, each bounded.
      while (written < 1_000 && (await anchorOnce(force))) written += 1;
      return written;
    } finally {
      await lock.release();
    }
  }

  const tick = () => {
    if (running) return;
    running = anchor()
      .then(
        (n) => (outage.recovered(), n),
        (error: unknown) => (outage.failed(error), 0),
      )
      .finally(() => (running = null));
  };

  return {
    anchor,
    start: () => void (timer = setInterval(tick, settings.intervalSeconds * 1000)),
    async stop() {
      if (timer) clearInterval(timer);
      await running;
    },
  };
}

export type StreamAnchorProof = {
  anchor: RecordedEvent;
  leaf: { index: number; stream: string; revision: number; hash: string };
  path: MerklePathStep[];
  root: string;
};

/**
 * The latest anchor, and the Merkle path of `stream`'s head in it; null when no anchor covers the stream.
 * One path of the stored tree is read (anchors from before the tree was stored: the whole tree is built).
 */
export async function latestAnchorProof(database: Database, eventStore: EventStore, stream: string): Promise<StreamAnchorProof | null> {
  await createAnchorTables(database);
  // One snapshot for the state, the heads and the tree (they are written together).
  const found = await database.withTransaction(async (client) => {
    await client.query('set transaction isolation level repeatable read');
    const state = await readState(client);
    if (!state) return null;
    if (state.streams === null) {
      const heads = await readHeads(client);
      const head = heads.get(stream);
      if (!head) return null;
      const tree = new MerkleTree();
      for (const [name, h] of heads) tree.set(h.index, leafOf(name, h));
      return { state, head, path: tree.path(head.index), root: tree.root()!.toString('hex') };
    }
    const head = (await readHeads(client, [stream])).get(stream);
    if (!head) return null;
    const { siblings, root } = pathPlaces(state.streams, head.index);
    const { rows } = await client.query<{ level: number; idx: number; hash: Buffer }>(
      `select level, idx, hash from audit_merkle_nodes where (level, idx) in (select * from unnest($1::smallint[], $2::int[]))`,
      [
        [...siblings.map((n) => n.level), root.level],
        [...siblings.map((n) => n.index), 0],
      ],
    );
    const node = (level: number, index: number) => {
      const row = rows.find((r) => r.level === level && r.idx === index);
      if (!row) throw new Error(`the stored Merkle tree lacks node ${index} of level ${level}`);
      return row.hash.toString('hex');
    };
    return {
      state,
      head,
      path: siblings.map((n) => ({ side: n.side, hash: node(n.level, n.index) })),
      root: node(root.level, 0),
    };
  });
  if (!found) return null;
  let anchor: RecordedEvent | null = null;
  for await (const event of eventStore.readStream(AUDIT_STREAM, { fromRevision: found.state.anchorRevision, maxCount: 1 })) anchor = event;
  if (!anchor) return null;
  return { anchor, leaf: { index: found.head.index, stream, revision: found.head.revision, hash: found.head.hash }, path: found.path, root: found.root };
}
