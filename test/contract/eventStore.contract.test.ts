/**
 * One contract for every event store adapter: PGlite always, the PostgreSQL server when DATABASE_URL
 * is set, EventStoreDB when EVENTSTORE_URL is set. Other suites may write to the same store at the
 * same time, so every case works on its own streams and reads the global log from a head it took.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Database } from '../../src/database/database.js';
import {
  WrongExpectedRevisionError,
  readStreamsTogether,
  readWholeStream,
  type EventStore,
  type Position,
  type RecordedEvent,
} from '../../src/eventStore/eventStore.js';
import type { PostgresEventStore } from '../../src/eventStore/postgresEventStore.js';
import { reportSkipped } from '../support/databases.js';
import { eventStoreAdapters } from '../support/storeCombinations.js';
import { eventually, newEvent, sleep, uniqueStream } from '../support/events.js';

// The adapters come from the store-combination table the end-to-end suite runs on.
const adapters = eventStoreAdapters();

/** Everything in the global log after `after` that belongs to `streams`, read in pages of `pageSize`. */
async function readAllOf(store: EventStore, after: Position | null, streams: Set<string>, pageSize = 3): Promise<RecordedEvent[]> {
  const found: RecordedEvent[] = [];
  let position = after;
  for (;;) {
    const page = await store.readAll({ after: position, maxCount: pageSize });
    if (page.length === 0) return found;
    expect(page.length).toBeLessThanOrEqual(pageSize);
    found.push(...page.filter((e) => streams.has(e.streamName)));
    position = page[page.length - 1]!.position;
  }
}

describe.each(adapters)('event store contract: $name', (adapter) => {
  let store: EventStore;
  let close: () => Promise<void>;
  let postgres: { store: PostgresEventStore; database: Database } | undefined;

  beforeAll(async () => {
    ({ store, close, postgres } = await adapter.open());
  });
  afterAll(async () => close());

  it('appends to a new stream and reads it back with data and metadata intact', async () => {
    const stream = uniqueStream();
    const events = [newEvent('Created', { n: 1, nested: { a: [1, 'x', null] } }), newEvent('Renamed', { name: 'Мельник' })];
    const result = await store.appendToStream(stream, events, { expectedRevision: 'no_stream' });
    expect(result.nextExpectedRevision).toBe(1n);

    const read = await readWholeStream(store, stream);
    expect(read.map((e) => [e.type, e.revision, e.streamName])).toEqual([
      ['Created', 0n, stream],
      ['Renamed', 1n, stream],
    ]);
    expect(read[0]!.data).toEqual({ n: 1, nested: { a: [1, 'x', null] } });
    expect(read.map((e) => e.metadata)).toEqual(events.map((e) => e.metadata));
    expect(store.comparePositions(read[1]!.position, result.position)).toBeLessThanOrEqual(0);
  });

  it('refuses no_stream on an existing stream and a stale exact revision, naming the actual revision', async () => {
    const stream = uniqueStream();
    await store.appendToStream(stream, [newEvent('A')], { expectedRevision: 'no_stream' });
    await expect(store.appendToStream(stream, [newEvent('B')], { expectedRevision: 'no_stream' })).rejects.toBeInstanceOf(WrongExpectedRevisionError);

    const stale = store.appendToStream(stream, [newEvent('B')], { expectedRevision: 5n });
    await expect(stale).rejects.toMatchObject({ name: 'WrongExpectedRevisionError', actual: 0n });
    await expect(store.appendToStream(uniqueStream(), [newEvent('B')], { expectedRevision: 0n })).rejects.toBeInstanceOf(WrongExpectedRevisionError);

    const ok = await store.appendToStream(stream, [newEvent('B'), newEvent('C')], { expectedRevision: 0n });
    expect(ok.nextExpectedRevision).toBe(2n);
    expect((await readWholeStream(store, stream)).map((e) => e.type)).toEqual(['A', 'B', 'C']);
  });

  it("appends with 'any' whatever the stream holds", async () => {
    const stream = uniqueStream();
    expect((await store.appendToStream(stream, [newEvent('A')], { expectedRevision: 'any' })).nextExpectedRevision).toBe(0n);
    expect((await store.appendToStream(stream, [newEvent('B'), newEvent('C')], { expectedRevision: 'any' })).nextExpectedRevision).toBe(2n);
  });

  it('reads an unknown stream as empty, and long streams page by page', async () => {
    expect(await readWholeStream(store, uniqueStream('missing'))).toEqual([]);
    const stream = uniqueStream();
    let expected: bigint | 'no_stream' = 'no_stream';
    for (let batch = 0; batch < 6; batch++) {
      const events = Array.from({ length: 200 }, (_, i) => newEvent('Tick', { i: batch * 200 + i }));
      expected = (await store.appendToStream(stream, events, { expectedRevision: expected })).nextExpectedRevision;
    }
    const all = await readWholeStream(store, stream);
    expect(all).toHaveLength(1200);
    expect(all.every((e, i) => e.revision === BigInt(i) && e.data.i === i)).toBe(true);

    const window: RecordedEvent[] = [];
    for await (const event of store.readStream(stream, { fromRevision: 700n, maxCount: 600 })) window.push(event);
    expect(window.map((e) => Number(e.revision))).toEqual(Array.from({ length: 500 }, (_, i) => 700 + i));
  });

  it('reads several streams together as each reads alone (unknown ones empty)', async () => {
    const [a, b, missing] = [uniqueStream(), uniqueStream(), uniqueStream('missing')];
    await store.appendToStream(a, [newEvent('A1'), newEvent('A2')], { expectedRevision: 'no_stream' });
    await store.appendToStream(b, [newEvent('B1')], { expectedRevision: 'no_stream' });
    const { events, reader } = await readStreamsTogether(store, [a, missing, b]);
    for (const stream of [a, b, missing]) {
      expect(events.get(stream)).toEqual(await readWholeStream(store, stream));
      expect(await readWholeStream(reader, stream)).toEqual(events.get(stream));
    }
    // A stream not read together is read from the store.
    const other = uniqueStream();
    await store.appendToStream(other, [newEvent('C1')], { expectedRevision: 'no_stream' });
    expect((await readWholeStream(reader, other)).map((e) => e.type)).toEqual(['C1']);
  });

  it('reads the global log from a checkpoint in pages, in append order, with increasing positions', async () => {
    const head = await store.headPosition();
    const [a, b, c] = [uniqueStream('a'), uniqueStream('b'), uniqueStream('c')];
    await store.appendToStream(a, [newEvent('A1'), newEvent('A2')], { expectedRevision: 'no_stream' });
    await store.appendToStream(b, [newEvent('B1')], { expectedRevision: 'no_stream' });
    await store.appendToStream(c, [newEvent('C1'), newEvent('C2'), newEvent('C3')], { expectedRevision: 'no_stream' });
    await store.appendToStream(a, [newEvent('A3')], { expectedRevision: 1n });

    const read = await readAllOf(store, head, new Set([a, b, c]));
    expect(read.map((e) => e.type)).toEqual(['A1', 'A2', 'B1', 'C1', 'C2', 'C3', 'A3']);
    for (let i = 1; i < read.length; i++) expect(store.comparePositions(read[i - 1]!.position, read[i]!.position)).toBeLessThan(0);

    // A checkpoint in the middle resumes right after it.
    const resumed = await readAllOf(store, read[3]!.position, new Set([a, b, c]));
    expect(resumed.map((e) => e.type)).toEqual(['C2', 'C3', 'A3']);
    expect(await store.countAfter(read[3]!.position)).toBeGreaterThanOrEqual(3);
    const newHead = await store.headPosition();
    expect(newHead && store.comparePositions(newHead, read[6]!.position)).toBeGreaterThanOrEqual(0);
  });

  it('keeps a multi-event append atomic: one bad event writes none of them', async () => {
    if (store.kind === 'eventstoredb') return; // ESDB treats a repeated event id as an idempotent retry, not an error.
    const stream = uniqueStream();
    const existing = newEvent('A');
    await store.appendToStream(stream, [existing], { expectedRevision: 'no_stream' });
    const other = uniqueStream();
    await expect(
      store.appendToStream(other, [newEvent('B'), { ...newEvent('C'), metadata: existing.metadata }], { expectedRevision: 'no_stream' }),
    ).rejects.toThrow();
    expect(await readWholeStream(store, other)).toEqual([]);
    // And the stream can still be created afterwards: nothing half-written blocks it.
    await store.appendToStream(other, [newEvent('B')], { expectedRevision: 'no_stream' });
  });

  it('subscribes: catches up from a checkpoint, then follows live appends', async () => {
    const head = await store.headPosition();
    const stream = uniqueStream();
    await store.appendToStream(stream, [newEvent('Before1'), newEvent('Before2')], { expectedRevision: 'no_stream' });
    const seen: string[] = [];
    const subscription = store.subscribe({
      after: head,
      batchSize: 2,
      onEvents: async (events) => void seen.push(...events.filter((e) => e.streamName === stream).map((e) => e.type)),
    });
    try {
      await eventually(() => seen.length === 2, 10_000, 'catch-up');
      await store.appendToStream(stream, [newEvent('Live1')], { expectedRevision: 1n });
      await store.appendToStream(stream, [newEvent('Live2'), newEvent('Live3')], { expectedRevision: 2n });
      await eventually(() => seen.length === 5, 10_000, 'live events');
      expect(seen).toEqual(['Before1', 'Before2', 'Live1', 'Live2', 'Live3']);
    } finally {
      await subscription.stop();
    }
  });

  it('redelivers a batch whose handler failed, from the last handled position, losing nothing', async () => {
    const head = await store.headPosition();
    const stream = uniqueStream();
    await store.appendToStream(stream, [newEvent('One'), newEvent('Two'), newEvent('Three')], { expectedRevision: 'no_stream' });
    const seen: string[] = [];
    let failures = 0;
    const errors: unknown[] = [];
    const subscription = store.subscribe({
      after: head,
      batchSize: 1,
      onEvents: async (events) => {
        const mine = events.filter((e) => e.streamName === stream);
        if (mine.some((e) => e.type === 'Two') && failures === 0) {
          failures += 1;
          throw new Error('handler down');
        }
        seen.push(...mine.map((e) => e.type));
      },
      onError: (error) => errors.push(error),
    });
    try {
      await eventually(() => seen.length === 3, 10_000, 'redelivery');
      expect(seen).toEqual(['One', 'Two', 'Three']);
      expect(errors).toHaveLength(1);
    } finally {
      await subscription.stop();
    }
  });

  it('lets exactly one of N racing writers win each revision; nothing lost or duplicated', async () => {
    const stream = uniqueStream('race');
    await store.appendToStream(stream, [newEvent('Start')], { expectedRevision: 'no_stream' });
    const writers = 8;
    const rounds = 5;
    for (let round = 0; round < rounds; round++) {
      const expected = BigInt(round);
      const results = await Promise.allSettled(
        Array.from({ length: writers }, (_, w) => store.appendToStream(stream, [newEvent('Step', { round, w })], { expectedRevision: expected })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(WrongExpectedRevisionError);
    }

    // Writers that retry on conflict: every one of their events lands exactly once.
    const perWriter = 10;
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) {
          for (;;) {
            const events = await readWholeStream(store, stream);
            try {
              await store.appendToStream(stream, [newEvent('Retry', { w, i })], { expectedRevision: BigInt(events.length - 1) });
              break;
            } catch (error) {
              if (!(error instanceof WrongExpectedRevisionError)) throw error;
            }
          }
        }
      }),
    );
    const events = await readWholeStream(store, stream);
    expect(events).toHaveLength(1 + rounds + writers * perWriter);
    expect(events.every((e, i) => e.revision === BigInt(i))).toBe(true);
    const retried = events.filter((e) => e.type === 'Retry').map((e) => `${String(e.data.w)}:${String(e.data.i)}`);
    expect(new Set(retried).size).toBe(writers * perWriter);
    expect(new Set(events.map((e) => e.metadata.eventId)).size).toBe(events.length);
  });

  it('never skips a transaction that took an earlier position but committed later', async () => {
    if (!postgres) {
      reportSkipped(`out-of-order commit case needs two concurrent transactions (PostgreSQL server); not applicable to ${adapter.name}`);
      return;
    }
    const { store: pgStore, database } = postgres;
    const head = await pgStore.headPosition();
    const [first, second] = [uniqueStream('first'), uniqueStream('second')];
    const seen: RecordedEvent[] = [];
    const subscription = pgStore.subscribe({
      after: head,
      onEvents: async (events) => void seen.push(...events.filter((e) => e.streamName === first || e.streamName === second)),
    });
    const clientA = await database.pool.connect();
    const clientB = await database.pool.connect();
    try {
      await clientA.query('begin');
      await pgStore.appendInTransaction(clientA, first, [newEvent('TakesPosition1')], 'no_stream');
      await clientB.query('begin');
      await pgStore.appendInTransaction(clientB, second, [newEvent('TakesPosition2')], 'no_stream');
      await clientB.query('commit'); // position 2 commits first …
      pgStore.notifyAppended();
      await sleep(300);
      // … and stays invisible while position 1 is in flight, so no reader can move past it.
      expect(seen).toEqual([]);
      expect((await pgStore.readAll({ after: head, maxCount: 100 })).filter((e) => e.streamName === second)).toEqual([]);
      await clientA.query('commit'); // then position 1
      pgStore.notifyAppended();
      await eventually(() => seen.length === 2, 10_000, 'both commits');
      expect(seen.map((e) => e.type)).toEqual(['TakesPosition1', 'TakesPosition2']);
    } finally {
      await clientA.query('rollback').catch(() => undefined);
      await clientB.query('rollback').catch(() => undefined);
      clientA.release();
      clientB.release();
      await subscription.stop();
    }
  });
});
