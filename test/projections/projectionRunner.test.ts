/**
 * The projection runner on real databases: catch up from the stored checkpoint then follow live,
 * exactly once with the checkpoint in the read model's transaction, one active instance per
 * projection, waitFor, and rebuild from zero.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Database } from '../../src/database/database.js';
import type { Position, RecordedEvent } from '../../src/eventStore/eventStore.js';
import { createPostgresEventStore, type PostgresEventStore } from '../../src/eventStore/postgresEventStore.js';
import { silentLogger } from '../../src/logger.js';
import { checkpointsSchema, deleteCheckpoint, readCheckpoint, storeCheckpoint } from '../../src/readModels/checkpoints.js';
import type { Projection } from '../../src/projections/projection.js';
import { createProjectionRunner, ProjectionTimeoutError } from '../../src/projections/projectionRunner.js';
import { rebuild } from '../../src/projections/replay.js';
import { databaseFactories } from '../support/databases.js';
import { eventually, newEvent, uniqueStream } from '../support/events.js';

/** Counts events per stream into a table, checkpoint in the same transaction. */
async function countingProjection(database: Database, name: string): Promise<Projection> {
  await database.migrate('projection_checkpoints', checkpointsSchema);
  await database.migrate('counts', 'create table if not exists counts (projection text, stream text, n int, primary key (projection, stream))');
  return {
    name,
    readCheckpoint: () => readCheckpoint(database.pool, name),
    async handle(events: RecordedEvent[], checkpoint: { from: Position | null; to: Position }) {
      await database.withTransaction(async (client) => {
        for (const event of events)
          await client.query(`insert into counts values ($1, $2, 1) on conflict (projection, stream) do update set n = counts.n + 1`, [name, event.streamName]);
        await storeCheckpoint(client, { projection: name, ...checkpoint });
      });
    },
    async reset() {
      await database.withTransaction(async (client) => {
        await client.query('delete from counts where projection = $1', [name]);
        await deleteCheckpoint(client, name);
      });
    },
  };
}

const count = async (database: Database, projection: string, stream: string) =>
  Number((await database.pool.query<{ n: number }>('select n from counts where projection = $1 and stream = $2', [projection, stream])).rows[0]?.n ?? 0);

describe.each(databaseFactories())('projection runner: $name', (factory) => {
  let database: Database;
  let store: PostgresEventStore;
  const logger = silentLogger();
  beforeAll(async () => {
    database = await factory.open();
    store = await createPostgresEventStore(database, { pollIntervalMs: 20 });
  });
  afterAll(async () => database.close());

  it('catches up, follows live, resumes from its checkpoint after a restart, and counts every event once', async () => {
    const stream = uniqueStream();
    await store.appendToStream(stream, [newEvent('A'), newEvent('B')], { expectedRevision: 'no_stream' });
    const projection = await countingProjection(database, 'resume');
    let runner = createProjectionRunner({ store, database, projection, logger, batchSize: 1 });
    await runner.start();
    await eventually(async () => (await count(database, 'resume', stream)) === 2, 10_000, 'catch-up');

    const live = await store.appendToStream(stream, [newEvent('C')], { expectedRevision: 1n });
    await runner.waitFor(live.position, 10_000);
    expect(await count(database, 'resume', stream)).toBe(3);
    await runner.stop();

    // While stopped, more events arrive; a new runner starts from the stored checkpoint.
    const later = await store.appendToStream(stream, [newEvent('D'), newEvent('E')], { expectedRevision: 2n });
    runner = createProjectionRunner({ store, database, projection, logger });
    await runner.start();
    await runner.waitFor(later.position, 10_000);
    expect(await count(database, 'resume', stream)).toBe(5);
    expect((await runner.status()).active).toBe(true);
    await runner.stop();
  });

  it('rebuilds from zero to the same result', async () => {
    const stream = uniqueStream();
    const appended = await store.appendToStream(stream, [newEvent('A'), newEvent('B'), newEvent('C')], { expectedRevision: 'no_stream' });
    const projection = await countingProjection(database, 'rebuild');
    const runner = createProjectionRunner({ store, database, projection, logger });
    await runner.start();
    await runner.waitFor(appended.position, 10_000);
    await runner.stop();
    await database.pool.query(`update counts set n = 99 where projection = 'rebuild'`); // tamper
    await rebuild(store, database, projection); // the operator's rebuild (CLI), with the runner stopped
    expect(await count(database, 'rebuild', stream)).toBe(3);
  });

  it('times out waitFor when the projection cannot reach the position', async () => {
    const projection = await countingProjection(database, 'never-started');
    const runner = createProjectionRunner({ store, database, projection, logger });
    const appended = await store.appendToStream(uniqueStream(), [newEvent('A')], { expectedRevision: 'no_stream' });
    await expect(runner.waitFor(appended.position, 200)).rejects.toBeInstanceOf(ProjectionTimeoutError);
  });

  it('keeps one active instance per projection; the standby takes over when the active one stops', async () => {
    if (factory.name !== 'postgres') return; // PGlite is one process with one connection: nothing to contend.
    const stream = uniqueStream();
    const first = await store.appendToStream(stream, [newEvent('A')], { expectedRevision: 'no_stream' });
    const projection = await countingProjection(database, 'single');
    const active = createProjectionRunner({ store, database, projection, logger });
    const standby = createProjectionRunner({ store, database, projection: await countingProjection(database, 'single'), logger, standbyRetryMs: 100 });
    await active.start();
    await standby.start();
    await active.waitFor(first.position, 10_000);
    expect((await active.status()).active).toBe(true);
    expect((await standby.status()).active).toBe(false);
    // The standby learns progress from the stored checkpoint.
    await standby.waitFor(first.position, 10_000);

    await active.stop();
    const second = await store.appendToStream(stream, [newEvent('B')], { expectedRevision: 0n });
    await standby.waitFor(second.position, 10_000);
    await eventually(async () => (await standby.status()).active, 10_000, 'takeover');
    expect(await count(database, 'single', stream)).toBe(2); // nothing counted twice across the handover
    await standby.stop();
  });
});
