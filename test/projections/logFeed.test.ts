/**
 * One reader of the log for every live projection: each page is read once for all of them, a
 * projection joining behind the others gets the events it has not seen (and the others nothing twice),
 * and a projection that saw nothing of its own writes no checkpoint-only transaction per batch (its
 * checkpoint is kept in memory and stored when the runner stops).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Database } from '../../src/database/database.js';
import type { Position, RecordedEvent } from '../../src/eventStore/eventStore.js';
import { createPostgresEventStore, READ_ALL_SQL, type PostgresEventStore } from '../../src/eventStore/postgresEventStore.js';
import { silentLogger } from '../../src/logger.js';
import { createLogFeed } from '../../src/projections/logFeed.js';
import type { Projection } from '../../src/projections/projection.js';
import { createProjectionRunner } from '../../src/projections/projectionRunner.js';
import { checkpointsSchema, readCheckpoint, storeCheckpoint } from '../../src/readModels/checkpoints.js';
import { databaseFactories, type DatabaseFactory } from '../support/databases.js';
import { eventually, newEvent, uniqueStream } from '../support/events.js';

/** Counts the events of streams starting with `prefix` in a table; counts its transactions. */
async function prefixCounter(database: Database, name: string, prefix: string) {
  await database.migrate('projection_checkpoints', checkpointsSchema);
  await database.migrate('feed_counts', 'create table if not exists feed_counts (projection text, stream text, n int, primary key (projection, stream))');
  const stats = { transactions: 0, seen: [] as string[] };
  const projection: Projection = {
    name,
    readCheckpoint: () => readCheckpoint(database.pool, name),
    relevant: (event) => event.streamName.startsWith(prefix),
    async handle(events: RecordedEvent[], checkpoint: { from: Position | null; to: Position }) {
      stats.transactions += 1;
      await database.withTransaction(async (client) => {
        for (const event of events.filter((e) => e.streamName.startsWith(prefix))) {
          stats.seen.push(`${event.streamName}@${event.revision}`);
          await client.query(`insert into feed_counts values ($1, $2, 1) on conflict (projection, stream) do update set n = feed_counts.n + 1`, [
            name,
            event.streamName,
          ]);
        }
        await storeCheckpoint(client, { projection: name, from: checkpoint.from, to: checkpoint.to });
      });
    },
    async reset() {},
  };
  return { projection, stats };
}

/** A database (opened before the tests of the describe, closed after) and a PostgreSQL/PGlite event store on it. */
function eventStoreOn(factory: DatabaseFactory) {
  const opened = {} as { database: Database; store: PostgresEventStore };
  beforeAll(async () => {
    opened.database = await factory.open();
    opened.store = await createPostgresEventStore(opened.database, { pollIntervalMs: 20 });
  });
  afterAll(async () => opened.database.close());
  return opened;
}

/** A store on the same database whose global-log page reads are counted (the store itself is real). */
async function countingReads(database: Database): Promise<{ store: PostgresEventStore; reads: () => number }> {
  let reads = 0;
  const pool = new Proxy(database.pool, {
    get(target, property) {
      if (property === 'query')
        return (...args: Parameters<typeof target.query>) => {
          if (args[0] === READ_ALL_SQL) reads += 1;
          return (target.query as (...a: unknown[]) => unknown).apply(target, args);
        };
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: await createPostgresEventStore({ ...database, pool }, { pollIntervalMs: 60_000 }), reads: () => reads };
}

describe.each(databaseFactories())('one log reader for every live projection: $name', (factory) => {
  const t = eventStoreOn(factory);
  const logger = silentLogger();

  it('reads each page once for all projections; each handles only its own events, each once', async () => {
    const run = uniqueStream('run').slice(-8);
    const a = await prefixCounter(t.database, `a-${run}`, `a${run}-`);
    const b = await prefixCounter(t.database, `b-${run}`, `b${run}-`);
    const feed = createLogFeed(t.store);
    const head = await t.store.headPosition();
    // Start both at the current head: this test's events only.
    for (const p of [a.projection, b.projection])
      await t.database.pool.query('insert into projection_checkpoints (projection, position) values ($1, $2)', [p.name, head ?? '0:0']);
    const runners = [a, b].map(({ projection }) =>
      createProjectionRunner({ store: t.store, database: t.database, projection, logger, feed, batchSize: 50, idleStoreMs: 60_000 }),
    );
    for (const runner of runners) await runner.start();

    let last: Position = head ?? '0:0';
    for (let i = 0; i < 20; i++)
      last = (await t.store.appendToStream(`${i % 2 ? 'a' : 'b'}${run}-${i}`, [newEvent('E')], { expectedRevision: 'no_stream' })).position;
    for (const runner of runners) await runner.waitFor(last, 30_000);
    const other = await t.store.appendToStream(uniqueStream('other'), [newEvent('E')], { expectedRevision: 'no_stream' });
    for (const runner of runners) await runner.waitFor(other.position, 30_000);

    expect(a.stats.seen).toHaveLength(10);
    expect(b.stats.seen).toHaveLength(10);
    expect(new Set([...a.stats.seen, ...b.stats.seen]).size).toBe(20);
    // The last batch held only another stream's event: no transaction for it, the checkpoint in memory only.
    const storedBefore = await readCheckpoint(t.database.pool, a.projection.name);
    expect(t.store.comparePositions(storedBefore!, other.position)).toBeLessThan(0);
    expect((await runners[0]!.status()).checkpoint).toBe(other.position);
    for (const runner of runners) await runner.stop();
    // Stopping stores what was kept in memory.
    expect(await readCheckpoint(t.database.pool, a.projection.name)).toBe(other.position);
    expect(await readCheckpoint(t.database.pool, b.projection.name)).toBe(other.position);
  });

  it('a checkpoint kept in memory is stored once the log goes quiet (lag, verify and standbys read it)', async () => {
    const run = uniqueStream('run').slice(-8);
    const a = await prefixCounter(t.database, `q-${run}`, `q${run}-`);
    const head = (await t.store.headPosition()) ?? '0:0';
    await t.database.pool.query('insert into projection_checkpoints (projection, position) values ($1, $2)', [a.projection.name, head]);
    const runner = createProjectionRunner({
      store: t.store,
      database: t.database,
      projection: a.projection,
      logger,
      feed: createLogFeed(t.store),
      idleStoreMs: 50,
    });
    await runner.start();
    const other = await t.store.appendToStream(uniqueStream('other'), [newEvent('E')], { expectedRevision: 'no_stream' });
    await runner.waitFor(other.position, 30_000);
    await eventually(async () => (await readCheckpoint(t.database.pool, a.projection.name)) === other.position, 10_000, 'the stored checkpoint');
    expect(a.stats.seen).toEqual([]);
    await runner.stop();
  });

  it('a page is read once for all projections (not once per projection)', async () => {
    /** Four runners on one stream's events, with or without a shared feed; the global-log reads they made. */
    const readsFor = async (shared: boolean) => {
      const run = uniqueStream('run').slice(-8);
      const { store: counted, reads } = await countingReads(t.database);
      const both = await Promise.all(['w', 'x', 'y', 'z'].map((p) => prefixCounter(t.database, `${p}-${run}`, `s${run}-`)));
      const head = (await t.store.headPosition()) ?? '0:0';
      for (const { projection } of both)
        await t.database.pool.query('insert into projection_checkpoints (projection, position) values ($1, $2)', [projection.name, head]);
      const feed = shared ? createLogFeed(counted) : counted;
      const runners = both.map(({ projection }) => createProjectionRunner({ store: counted, database: t.database, projection, logger, feed }));
      for (const runner of runners) await runner.start();
      // One wake after an append (this store polls once a minute only): each reader reads its page. The
      // wake comes once the events are visible: a transaction elsewhere on the shared server can hold the
      // log's visibility back, and a reader woken before that would sleep its minute.
      const appended = await t.store.appendToStream(`s${run}-1`, [newEvent('E'), newEvent('F')], { expectedRevision: 'no_stream' });
      await eventually(
        async () => (await t.store.readAll({ after: head, maxCount: 100 })).some((e) => e.position === appended.position),
        30_000,
        'the appended events visible',
      );
      counted.notifyAppended();
      for (const runner of runners) await runner.waitFor(appended.position, 30_000);
      for (const runner of runners) await runner.stop();
      expect(both.map(({ stats }) => stats.seen.length)).toEqual([2, 2, 2, 2]);
      return reads();
    };
    const withOne = await readsFor(true);
    const withTwo = await readsFor(false);
    // Shared: a first (empty) read, the page, perhaps one more for a wake during a read. Separate: each reads.
    expect(withOne).toBeGreaterThan(0);
    expect(withOne).toBeLessThan(4);
    expect(withTwo).toBeGreaterThanOrEqual(4);
  });

  it('a projection joining behind the others gets what it has not seen; the others get nothing twice', async () => {
    const run = uniqueStream('run').slice(-8);
    const ahead = await prefixCounter(t.database, `ahead-${run}`, `j${run}-`);
    const behind = await prefixCounter(t.database, `behind-${run}`, `j${run}-`);
    const feed = createLogFeed(t.store);
    const start = (await t.store.headPosition()) ?? '0:0';
    for (const p of [ahead.projection, behind.projection])
      await t.database.pool.query('insert into projection_checkpoints (projection, position) values ($1, $2)', [p.name, start]);
    const first = createProjectionRunner({ store: t.store, database: t.database, projection: ahead.projection, logger, feed });
    await first.start();
    const early = await t.store.appendToStream(`j${run}-1`, [newEvent('E'), newEvent('F')], { expectedRevision: 'no_stream' });
    await first.waitFor(early.position, 30_000);

    const second = createProjectionRunner({ store: t.store, database: t.database, projection: behind.projection, logger, feed });
    await second.start();
    const late = await t.store.appendToStream(`j${run}-1`, [newEvent('G')], { expectedRevision: 1n });
    await second.waitFor(late.position, 30_000);
    await first.waitFor(late.position, 30_000);
    expect(ahead.stats.seen).toEqual([`j${run}-1@0`, `j${run}-1@1`, `j${run}-1@2`]);
    expect(behind.stats.seen).toEqual([`j${run}-1@0`, `j${run}-1@1`, `j${run}-1@2`]);
    await first.stop();
    await second.stop();
  });
});
