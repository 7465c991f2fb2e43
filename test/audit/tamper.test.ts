/**
 * Tamper-evident history (issue 16) on real databases: a history is written through the event store
 * and anchored, then changed through SQL behind the application's back. `verify --history` (the store)
 * and the offline check of an export must each name the broken link; an untouched history verifies clean.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { v7 as uuidv7 } from 'uuid';
import { anchorDataSchema, anchorKeyResolver, AUDIT_STREAM, type AnchorSigningKey } from '../../src/audit/anchorRecord.js';
import { publicPartOf } from '../../src/audit/anchorKey.js';
import { createAnchorer, latestAnchorProof } from '../../src/audit/anchors.js';
import { leafHash, rootFromPath } from '../../src/audit/merkle.js';
import type { Database } from '../../src/database/database.js';
import type { EventToAppend } from '../../src/eventStore/eventStore.js';
import { eventHash, hashedMetadata } from '../../src/eventStore/hashChain.js';
import { createPostgresEventStore, type PostgresEventStore } from '../../src/eventStore/postgresEventStore.js';
import { copyHistoryOut, VERIFY_LINE_SQL } from '../../src/history/postgresHistory.js';
import { readHistoryFile } from '../../src/history/historyFile.js';
import { importHistory } from '../../src/history/importHistory.js';
import { anyEvent } from '../../src/history/eventChecks.js';
import { fileLines, verifyHistoryLines, type HistoryProblem } from '../../src/history/verifyHistory.js';
import { verifyStoredHistory } from '../../src/history/verifyStore.js';
import { silentLogger } from '../../src/logger.js';
import { databaseFactories } from '../support/databases.js';

const event = (type: string, data: Record<string, string | number>): EventToAppend => ({
  type,
  data,
  metadata: {
    eventId: uuidv7(),
    correlationId: 'tamper-test',
    causationId: null,
    userId: 'auditor',
    clientId: 'le-1',
    occurredAt: new Date().toISOString(),
    schemaVersion: 1,
  },
});

async function signingKey(): Promise<{ key: AnchorSigningKey; jwks: ReturnType<typeof anchorKeyResolver> }> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const privateJwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(publicPartOf(privateJwk));
  return { key: { privateJwk, alg: 'ES256', kid }, jwks: anchorKeyResolver({ ...publicPartOf(privateJwk), kid }) };
}

describe.each(databaseFactories())('tamper-evident history on %s', ({ open }) => {
  let database: Database;
  let store: PostgresEventStore;
  let dir: string;
  let keys: Awaited<ReturnType<typeof signingKey>>;
  /** The event ids of stream a, by revision. */
  let aIds: string[];

  /** The global log shows only what no running transaction can precede (on a shared server, others' too). */
  const visible = async (count: number) => {
    for (let waited = 0; (await store.countAfter(null)) < count; waited += 20) {
      if (waited > 30_000) throw new Error(`the log never showed ${count} events`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tamper-'));
    database = await open();
    store = await createPostgresEventStore(database);
    keys = await signingKey();
    const anchorer = createAnchorer({
      database,
      eventStore: store,
      key: keys.key,
      settings: { everyEvents: 1000, intervalSeconds: 60 },
      logger: silentLogger(),
    });
    aIds = [];
    // Streams a, b, c interleaved; a position gap (a rolled-back append's) for the forged insert below.
    for (let i = 0; i < 4; i++) {
      const a = event('Counted', { i, stream: 'a' });
      aIds.push(a.metadata.eventId);
      await store.appendToStream('stream-a', [a], { expectedRevision: 'any' });
      await store.appendToStream('stream-b', [event('Counted', { i, stream: 'b' })], { expectedRevision: 'any' });
    }
    await database.pool.query(`select nextval('es_global_position'), nextval('es_global_position')`);
    await store.appendToStream('stream-c', [event('Counted', { i: 0 }), event('Counted', { i: 1 })], { expectedRevision: 'no_stream' });
    await visible(10);
    expect(await anchorer.anchor({ force: true })).toBe(1);
    await store.appendToStream('stream-c', [event('Counted', { i: 2 })], { expectedRevision: 1n });
    await visible(12);
    expect(await anchorer.anchor({ force: true })).toBe(1);
  });
  afterEach(async () => {
    await database.close();
    await rm(dir, { recursive: true, force: true });
  });

  const online = () => verifyStoredHistory({ eventStore: store, database }, { anchorKeys: keys.jwks });
  const offline = async (withKey = true) => {
    const file = join(dir, `history-${uuidv7()}.ndjson`);
    const out = createWriteStream(file);
    await copyHistoryOut(database, out);
    out.end();
    await finished(out);
    return verifyHistoryLines(fileLines(file), { anchorKeys: withKey ? keys.jwks : null });
  };
  type Expected = Partial<Omit<HistoryProblem, 'message'>> & { message: RegExp };
  const expectBroken = async (expected: Expected, offlineExpected: Expected = expected) => {
    const stored = await online();
    expect(stored.problem).toEqual(expect.objectContaining({ ...expected, message: expect.stringMatching(expected.message) }));
    const exported = await offline();
    expect(exported.problem).toEqual(expect.objectContaining({ ...offlineExpected, message: expect.stringMatching(offlineExpected.message) }));
  };
  it('an untouched history verifies clean, online and from its export, signatures checked', async () => {
    const stored = await online();
    expect(stored).toEqual(expect.objectContaining({ problem: null, events: 13, streams: 4, anchors: 2, signaturesChecked: true, anchoredEvents: 12 }));
    expect((await offline()).problem).toBeNull();
    expect(await offline(false)).toEqual(expect.objectContaining({ problem: null, signaturesChecked: false }));
  });

  it('lets the database check every hash over the stored bytes, hostile text included (canonical JSON stored as written)', async () => {
    const hostile = {
      text: 'Мельник "quoted" \\ back\tslash\n line\u2028 sep 😀 \u0001',
      numbers: [1e21, 1e-7, 0.1, -0, 333333333.33333329, 2 ** 53],
      nested: { z: null, a: [true, false, {}], ключ: 'é' },
    } as unknown as EventToAppend['data'];
    await store.appendToStream('stream-"ш"', [{ ...event('Counted', {}), data: hostile }], { expectedRevision: 'no_stream' });
    await visible(14);
    const { rows } = await database.pool.query<{ line: string; stream_name: string }>(`select ${VERIFY_LINE_SQL} as line, stream_name from es_events`);
    const events = rows.filter((r) => r.stream_name !== AUDIT_STREAM);
    expect(events).toHaveLength(12);
    // Checked by the database: the short line, a JSON array with the stream name last.
    for (const { line, stream_name } of events) expect((JSON.parse(line) as unknown[])[5]).toBe(stream_name);
    expect(events.every(({ line }) => (JSON.parse(line) as unknown[]).length === 6)).toBe(true);
    expect((await online()).problem).toBeNull();
    expect((await offline()).problem).toBeNull();
  });

  it("refuses offline a file line in the database's short checked form: a file cannot vouch for its own hashes", async () => {
    const { rows } = await database.pool.query<{ line: string }>(
      `select ${VERIFY_LINE_SQL} as line from es_events where stream_name = 'stream-b' and revision = 0`,
    );
    const file = join(dir, 'short.ndjson');
    const out = createWriteStream(file);
    await copyHistoryOut(database, out);
    out.end();
    await finished(out);
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    lines[1] = rows[0]!.line; // stream-b revision 0 is the log's second event
    await writeFile(file, `${lines.join('\n')}\n`);
    const result = await verifyHistoryLines(fileLines(file), { anchorKeys: keys.jwks });
    expect(result.problem).toEqual({ line: 2, stream: null, revision: null, eventId: null, message: 'not a JSON object' });
  });

  it('recomputes in the verifier a row stored in other bytes with the same content, which still verifies', async () => {
    // jsonb prints its own key order and spacing: not the canonical text, the same JSON value.
    await database.pool.query(`update es_events set data = data::jsonb::json where stream_name = 'stream-a' and revision = 2`);
    const { rows } = await database.pool.query<{ line: string }>(
      `select ${VERIFY_LINE_SQL} as line from es_events where stream_name = 'stream-a' and revision = 2`,
    );
    expect(JSON.parse(rows[0]!.line)).toEqual(expect.objectContaining({ stream_name: 'stream-a', revision: 2 }));
    expect((await online()).problem).toBeNull();
  });

  it('names one event whose data was changed', async () => {
    await database.pool.query(`update es_events set data = jsonb_set(data::jsonb, '{i}', '7') where stream_name = 'stream-a' and revision = 2`);
    await expectBroken({ stream: 'stream-a', revision: 2, eventId: aIds[2]!, message: /content .* no longer gives its hash/ });
  });

  it('names a row deleted in the middle of a stream', async () => {
    await database.pool.query(`delete from es_events where stream_name = 'stream-a' and revision = 1`);
    await expectBroken({ stream: 'stream-a', revision: 2, eventId: aIds[2]!, message: /revision 1 is missing: revision 2 follows 0/ });
  });

  it('names a stream whose tail was deleted (the stream table fixed too: the signed anchor still has it)', async () => {
    await database.pool.query(`delete from es_events where stream_name = 'stream-a' and revision = 3`);
    await database.pool.query(`update es_streams set revision = 2 where stream_name = 'stream-a'`);
    await expectBroken({ stream: 'stream-a', revision: 2, message: /anchor #1 signed stream stream-a at revision 3 .*; the history has revision 2/ });
  });

  it('names a deleted tail from the stream table when no anchor covers it yet', async () => {
    await store.appendToStream('stream-a', [event('Counted', { i: 9 })], { expectedRevision: 3n });
    await database.pool.query(`delete from es_events where stream_name = 'stream-a' and revision = 4`);
    const stored = await online();
    expect(stored.problem).toEqual(
      expect.objectContaining({
        stream: 'stream-a',
        revision: 3,
        message: expect.stringMatching(/head is revision 4, but its events end at revision 3: events were removed from its tail/),
      }),
    );
  });

  it('names two swapped revisions', async () => {
    await database.pool.query(`update es_events set revision = -1 where stream_name = 'stream-b' and revision = 1`);
    await database.pool.query(`update es_events set revision = 1 where stream_name = 'stream-b' and revision = 2`);
    await database.pool.query(`update es_events set revision = 2 where stream_name = 'stream-b' and revision = -1`);
    // In log order the old revision 1 now comes first as revision 2: the revision before it is missing.
    await expectBroken({ stream: 'stream-b', revision: 2, message: /revision 1 is missing: revision 2 follows 0/ });
  });

  it('catches a forged event inserted with a recomputed chain by the signed anchor that covers its place', async () => {
    // The forger appends to stream b behind the first anchor (in the position gap), with a correct link.
    const head = (
      await database.pool.query<{ hash: string }>(`select encode(hash, 'hex') as hash from es_events where stream_name = 'stream-b' and revision = 3`)
    ).rows[0]!;
    const anchorGap = (
      await database.pool.query<{ gap: string; xid: string }>(
        `select p.gap, e.transaction_id::text as xid from (select min(global_position) + 1 as gap from es_events g
         where not exists (select 1 from es_events n where n.global_position = g.global_position + 1)) p
       join es_events e on e.global_position = p.gap - 1`,
      )
    ).rows[0]!;
    const forged = event('Counted', { i: 99, stream: 'b' });
    const stored = {
      event_id: forged.metadata.eventId,
      correlation_id: 'tamper-test',
      causation_id: null,
      user_id: 'auditor',
      client_id: 'le-1',
      occurred_at: forged.metadata.occurredAt,
      schema_version: 1,
    };
    const hash = eventHash(head.hash, { stream: 'stream-b', revision: 4, type: forged.type, data: forged.data, metadata: hashedMetadata(stored) });
    await database.pool.query(
      `insert into es_events (global_position, transaction_id, stream_name, revision, event_id, event_type, data, metadata, prev_hash, hash)
       values ($1, $2::text::xid8, 'stream-b', 4, $3, $4, $5, $6, decode($7, 'hex'), decode($8, 'hex'))`,
      [anchorGap.gap, anchorGap.xid, forged.metadata.eventId, forged.type, JSON.stringify(forged.data), JSON.stringify(stored), head.hash, hash],
    );
    await database.pool.query(`update es_streams set revision = 4 where stream_name = 'stream-b'`);
    // Its chain is sound; the first anchor after it signed stream b at revision 3 (or did not list it).
    await expectBroken({ stream: 'stream-b', message: /anchor #1 signed stream stream-b at revision 3 .*; the history has revision 4/ });
  });

  it('writes an anchor only once enough events are pending, and never one over anchors alone', async () => {
    const settings = (everyEvents: number) => ({
      database,
      eventStore: store,
      key: keys.key,
      settings: { everyEvents, intervalSeconds: 60 },
      logger: silentLogger(),
    });
    await store.appendToStream('stream-a', [event('Counted', { i: 4 })], { expectedRevision: 3n });
    await visible(14);
    expect(await createAnchorer(settings(3)).anchor()).toBe(0); // 2 pending: the last anchor and one event
    expect(await createAnchorer(settings(2)).anchor()).toBe(1);
    await visible(15);
    expect(await createAnchorer(settings(1)).anchor({ force: true })).toBe(0); // only the new anchor is pending
    expect((await online()).problem).toBeNull();
  });

  it('an export imported into an empty store keeps its chains and anchors, and anchoring resumes after them', async () => {
    const file = join(dir, 'moved.ndjson');
    const out = createWriteStream(file);
    await copyHistoryOut(database, out);
    out.end();
    await finished(out);
    const target = await open();
    try {
      const moved = await createPostgresEventStore(target);
      // The store's own streams (stream-a, …) belong to no aggregate: only the mechanics are under test here.
      await importHistory({ eventStore: moved, database: target }, () => readHistoryFile(file), { check: anyEvent });
      await moved.appendToStream('stream-a', [event('Counted', { i: 4 })], { expectedRevision: 3n });
      const anchorer = createAnchorer({
        database: target,
        eventStore: moved,
        key: keys.key,
        settings: { everyEvents: 1, intervalSeconds: 60 },
        logger: silentLogger(),
      });
      for (let waited = 0; (await moved.countAfter(null)) < 14; waited += 20) {
        if (waited > 30_000) throw new Error('the moved log never showed its 14 events');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await anchorer.anchor()).toBe(1);
      const verified = await verifyStoredHistory({ eventStore: moved, database: target }, { anchorKeys: keys.jwks });
      expect(verified).toEqual(expect.objectContaining({ problem: null, events: 15, anchors: 3, anchoredEvents: 14 }));
    } finally {
      await target.close();
    }
  });

  it("keeps the stored Merkle tree in step with each anchor: every stream's proof reaches the anchor's root, after an upgrade too", async () => {
    const anchorer = createAnchorer({ database, eventStore: store, key: keys.key, settings: { everyEvents: 1, intervalSeconds: 60 }, logger: silentLogger() });
    const expectProofs = async () => {
      const { rows } = await database.pool.query<{ stream_name: string }>('select stream_name from es_streams');
      for (const { stream_name } of rows) {
        const proof = (await latestAnchorProof(database, store, stream_name))!;
        const signed = anchorDataSchema.parse(proof.anchor.data);
        expect(proof.root).toBe(signed.merkle_root);
        expect(rootFromPath(leafHash(proof.leaf), proof.path).toString('hex')).toBe(signed.merkle_root);
      }
      expect((await online()).problem).toBeNull();
    };
    const grow = async (round: number) => {
      for (let i = 0; i < 7; i++) await store.appendToStream(`stream-${round}-${i}`, [event('Counted', { i })], { expectedRevision: 'no_stream' });
      await store.appendToStream('stream-a', [event('Counted', { round })], { expectedRevision: 'any' });
      await visible(await database.pool.query<{ n: string }>('select count(*) as n from es_events').then((r) => Number(r.rows[0]!.n)));
      expect(await anchorer.anchor({ force: true })).toBe(1);
    };
    await grow(1); // new leaves appended, one moved: the stored paths updated in place
    await grow(2);
    await expectProofs();
    // Anchors written before the tree was stored: proofs build it in memory, the next anchor stores it whole.
    await database.pool.query('update audit_anchor_state set streams = null; delete from audit_merkle_nodes');
    await expectProofs();
    await grow(3);
    expect(Number((await database.pool.query<{ n: string }>('select count(*) as n from audit_merkle_nodes')).rows[0]!.n)).toBeGreaterThan(2 * 20);
    await expectProofs();
  });

  it('refuses an anchor whose signature does not verify with the given key', async () => {
    const other = await signingKey();
    const result = await verifyStoredHistory({ eventStore: store, database }, { anchorKeys: other.jwks });
    expect(result.problem).toEqual(
      expect.objectContaining({ stream: AUDIT_STREAM, message: expect.stringMatching(/anchor #1: its signature does not verify/) }),
    );
  });
});
