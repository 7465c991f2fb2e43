/**
 * Signed anchors over the whole log (issue 16). Every AUDIT_ANCHOR_INTERVAL_SECONDS the anchorer reads
 * the log after the last anchor's coverage; once AUDIT_ANCHOR_EVERY_EVENTS events have come (or when
 * asked, `cli anchor`), it appends to the audit stream an anchor: the Merkle root over every stream's head,
 * the part of the log it covers, the time, the previous anchor's hash, signed (anchorRecord.ts).
 *
 * One process at a time (advisory lock). The heads the latest anchor signed are kept in
 * audit_anchor_heads (leaf order = first appearance in the log), written in the same transaction as
 * the anchor on PostgreSQL/PGlite, so a proof (GET …/proof) always matches the latest anchor.
 */
import { uuidv7 } from '../shared/uuidv7.js';
import type pg from 'pg';
import type { Database } from '../database/database.js';
import type { EventStore, EventToAppend, ExpectedRevision, RecordedEvent } from '../eventStore/eventStore.js';
import type { PostgresEventStore } from '../eventStore/postgresEventStore.js';
import type { Logger } from '../logger.js';
import { createOutage } from '../shared/outage.js';
import { ANCHOR_EVENT_TYPE, AUDIT_STREAM, anchorDataSchema, signAnchor, type AnchorData, type AnchorSigningKey, type SignedAnchor } from './anchorRecord.js';
import { leafHash, MerkleTree, type MerklePathStep } from './merkle.js';

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
`;

/** An anchor never covers more than this many events (its `changed` list stays small); catch-up writes several. */
export const MAX_EVENTS_PER_ANCHOR = 10_000;
const PAGE = 1_000;

type State = { position: string; eventCount: number; lastEventId: string; anchorRevision: bigint; anchorHash: string };
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
  const { rows } = await sql.query<{ position: string; event_count: string; last_event_id: string; anchor_revision: string; anchor_hash: string }>(
    'select position, event_count, last_event_id, anchor_revision, anchor_hash from audit_anchor_state',
  );
  const row = rows[0];
  return row
    ? {
        position: row.position,
        eventCount: Number(row.event_count),
        lastEventId: row.last_event_id,
        anchorRevision: BigInt(row.anchor_revision),
        anchorHash: row.anchor_hash,
      }
    : null;
}

async function readHeads(sql: Database['pool']): Promise<Map<string, Head>> {
  const { rows } = await sql.query<{ stream_name: string; leaf_index: number; revision: string; hash: string }>(
    'select stream_name, leaf_index, revision, hash from audit_anchor_heads order by leaf_index',
  );
  return new Map(rows.map((r) => [r.stream_name, { index: r.leaf_index, revision: Number(r.revision), hash: r.hash }]));
}

const treeOf = (heads: Map<string, Head>) => {
  const tree = new MerkleTree();
  for (const [stream, head] of heads) tree.set(head.index, leafHash({ stream, revision: head.revision, hash: head.hash }));
  return tree;
};

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

  /** Where the anchors stand: the stored state, or (a store imported with its anchors) rebuilt from the log. */
  async function currentState(): Promise<{ state: State | null; heads: Map<string, Head>; rebuilt: boolean }> {
    const state = await readState(database.pool);
    // A state behind the audit stream (an anchor whose heads were not saved: a crash on EventStoreDB) is rebuilt.
    let behind = false;
    if (state) for await (const _ of eventStore.readStream(AUDIT_STREAM, { fromRevision: state.anchorRevision + 1n, maxCount: 1 })) behind = true;
    if (state && !behind) return { state, heads: await readHeads(database.pool), rebuilt: false };
    const heads = new Map<string, Head>();
    const lastAnchor = await lastEventOf(eventStore, AUDIT_STREAM);
    if (!lastAnchor) return { state: null, heads, rebuilt: true };
    // Resume after the imported anchors: rebuild the heads up to the last one's coverage.
    const anchor = anchorDataSchema.parse(lastAnchor.data);
    let after: string | null = null;
    let count = 0;
    for (;;) {
      const page = await eventStore.readAll({ after, maxCount: PAGE });
      if (page.length === 0) throw new Error(`the last anchor covers event ${anchor.covers.last_event_id}, which is not in the log`);
      for (const event of page) {
        count += 1;
        apply(heads, event);
        if (event.metadata.eventId === anchor.covers.last_event_id) {
          const resumed: State = {
            position: event.position,
            eventCount: count,
            lastEventId: event.metadata.eventId,
            anchorRevision: lastAnchor.revision,
            anchorHash: lastAnchor.hash!,
          };
          return { state: resumed, heads, rebuilt: true };
        }
      }
      after = page[page.length - 1]!.position;
    }
  }

  function apply(heads: Map<string, Head>, event: RecordedEvent): void {
    if (event.hash === undefined) throw new Error(`event ${event.metadata.eventId} of ${event.streamName} has no hash: the store keeps no hash chain`);
    const index = heads.get(event.streamName)?.index ?? heads.size;
    heads.set(event.streamName, { index, revision: Number(event.revision), hash: event.hash });
  }

  /** One anchor if due; returns whether one was written. */
  async function anchorOnce(force: boolean): Promise<boolean> {
    const { state, heads, rebuilt } = await currentState();
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

    const changed = new Map<string, Head>();
    for (const event of pending) {
      apply(heads, event);
      changed.set(event.streamName, heads.get(event.streamName)!);
    }
    const tree = treeOf(heads);
    const last = pending[pending.length - 1]!;
    const signed: SignedAnchor = {
      version: 1,
      covers: { event_count: (state?.eventCount ?? 0) + pending.length, last_event_id: last.metadata.eventId, position: last.position },
      streams: heads.size,
      merkle_root: tree.root()!.toString('hex'),
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
      await client.query(
        `insert into audit_anchor_state (id, position, event_count, last_event_id, anchor_revision, anchor_hash) values (1, $1, $2, $3, $4, $5)
         on conflict (id) do update set position = $1, event_count = $2, last_event_id = $3, anchor_revision = $4, anchor_hash = $5`,
        [signed.covers.position, signed.covers.event_count, signed.covers.last_event_id, String(anchorRevision), anchorHash],
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

/** The latest anchor, and the Merkle path of `stream`'s head in it; null when no anchor covers the stream. */
export async function latestAnchorProof(database: Database, eventStore: EventStore, stream: string): Promise<StreamAnchorProof | null> {
  await createAnchorTables(database);
  // One snapshot for the state and the heads (they are written together).
  const { state, heads } = await database.withTransaction(async (client) => {
    await client.query('set transaction isolation level repeatable read');
    const read = await readState(client);
    const { rows } = await client.query<{ stream_name: string; leaf_index: number; revision: string; hash: string }>(
      'select stream_name, leaf_index, revision, hash from audit_anchor_heads order by leaf_index',
    );
    return { state: read, heads: new Map(rows.map((r) => [r.stream_name, { index: r.leaf_index, revision: Number(r.revision), hash: r.hash }])) };
  });
  const head = heads.get(stream);
  if (!state || !head) return null;
  let anchor: RecordedEvent | null = null;
  for await (const event of eventStore.readStream(AUDIT_STREAM, { fromRevision: state.anchorRevision, maxCount: 1 })) anchor = event;
  if (!anchor) return null;
  const tree = treeOf(heads);
  return {
    anchor,
    leaf: { index: head.index, stream, revision: head.revision, hash: head.hash },
    path: tree.path(head.index),
    root: tree.root()!.toString('hex'),
  };
}
