/**
 * A log "from the future" (transaction ids this cluster has not handed out, as after a pg_dump restored
 * into another cluster) is hidden from the global log until the store's open re-stamps it: then every
 * event shows in the old order, stored checkpoints follow it, nothing of an event changes, and new
 * appends come after it. Simulated here by moving the stored ids far up, with an order that disagrees
 * with global_position; test/reliability/restoredDatabase.test.ts restores a real dump into a new cluster.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { openPostgres, type Database } from '../../src/database/database.js';
import { READ_ALL_SQL, createPostgresEventStore } from '../../src/eventStore/postgresEventStore.js';
import { findLogFromTheFuture, repairLogOrder, RESTAMPED_TRANSACTION_ID } from '../../src/eventStore/logOrderRepair.js';
import { verifyStoredHistory } from '../../src/history/verifyStore.js';
import { checkpointsSchema, readCheckpoint } from '../../src/readModels/checkpoints.js';
import { databaseFactories, reportSkipped } from '../support/databases.js';
import { newEvent } from '../support/events.js';

const FUTURE = 1_000_000_000_000n;
const EVENT_ROWS = `select stream_name, revision, event_id, event_type, data::text, metadata::text, encode(prev_hash, 'hex') as prev_hash, encode(hash, 'hex') as hash
  from es_events order by stream_name, revision`;

describe.each(databaseFactories())('log order repair on $name', (factory) => {
  let database: Database;
  beforeEach(async () => {
    database = await factory.open();
  });
  afterEach(async () => database.close());

  it('re-stamps a log from the future in its old order, moves the checkpoints, changes no event, and appends land after it', async () => {
    const store = await createPostgresEventStore(database);
    for (let i = 0; i < 6; i += 1)
      await store.appendToStream(`s-${i % 3}`, [newEvent('E', { i }), newEvent('E', { i, second: true })], { expectedRevision: 'any' });
    // The "old cluster's" order: far above this cluster's counter, and against global_position between
    // transactions (what concurrent commits leave), so keeping order takes more than one id.
    // Transactions swapped in pairs (each is two events of one stream; the pairs are of different streams).
    await database.pool.query(
      `update es_events e set transaction_id = ($1::bigint + (t.n # 1))::text::xid8
       from (select stream_name, revision, (row_number() over (order by global_position) - 1) / 2 as n from es_events) t
       where e.stream_name = t.stream_name and e.revision = t.revision`,
      [String(FUTURE)],
    );
    const { rows: oldOrder } = await database.pool.query<{ event_id: string; position: string }>(
      `select event_id, transaction_id::text || ':' || global_position as position from es_events order by es_events.transaction_id, es_events.global_position`,
    );
    const { rows: byGlobalPosition } = await database.pool.query<{ event_id: string }>('select event_id from es_events order by global_position');
    expect(oldOrder.map((r) => r.event_id)).not.toEqual(byGlobalPosition.map((r) => r.event_id));
    const before = (await database.pool.query(EVENT_ROWS)).rows;
    await database.pool.query(checkpointsSchema);
    await database.pool.query(`insert into projection_checkpoints (projection, position) values ('at-fifth', $1), ('beyond', $2), ('start', '0:0')`, [
      oldOrder[4]!.position,
      `${FUTURE + 5000n}:1`,
    ]);

    // The bug, as a restore leaves it: every event stored, none in the global log.
    expect((await database.pool.query(READ_ALL_SQL, ['0', '0', 100])).rows).toEqual([]);
    expect(await findLogFromTheFuture(database.pool)).toEqual(expect.objectContaining({ newestTransactionId: expect.any(BigInt) }));

    const logged: Array<{ msg: string; events?: number }> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line) as { msg: string }) });
    const reopened = await createPostgresEventStore(database, { logger });
    expect(logged).toEqual([
      expect.objectContaining({
        msg: expect.stringMatching(/^log order repair: .* re-stamped the order of 12 event\(s\) below the cluster's horizon, no event changed$/),
        events: 12,
        positions: { projection_checkpoints: 2 },
        beyondLog: { projection_checkpoints: 1 },
      }),
    ]);
    expect(await findLogFromTheFuture(database.pool)).toBeNull();

    const log = await reopened.readAll({ after: null, maxCount: 100 });
    expect(log.map((e) => e.metadata.eventId)).toEqual(oldOrder.map((r) => r.event_id));
    expect(log.map((e) => e.position)).toEqual(oldOrder.map((_, i) => `${RESTAMPED_TRANSACTION_ID}:${i + 1}`));
    expect((await database.pool.query(EVENT_ROWS)).rows).toEqual(before);
    expect(await readCheckpoint(database.pool, 'at-fifth')).toBe(`${RESTAMPED_TRANSACTION_ID}:5`);
    expect(await readCheckpoint(database.pool, 'start')).toBe(`${RESTAMPED_TRANSACTION_ID}:0`);
    // Past the log's end it stays past it, for the start's checkpoint check to refuse.
    expect(await readCheckpoint(database.pool, 'beyond')).toBe(`${FUTURE + 5000n}:1`);
    expect(await reopened.readAll({ after: `${RESTAMPED_TRANSACTION_ID}:5`, maxCount: 100 })).toHaveLength(7);

    await reopened.appendToStream('s-0', [newEvent('After')], { expectedRevision: 3n });
    const after = await reopened.readAll({ after: null, maxCount: 100 });
    expect(after).toHaveLength(13);
    expect(after.at(-1)!.type).toBe('After');
    expect(await reopened.headPosition()).toBe(after.at(-1)!.position);
    expect(await verifyStoredHistory({ eventStore: reopened, database }, { anchorKeys: null })).toEqual(
      expect.objectContaining({ problem: null, events: 13, streams: 3 }),
    );

    // Once: a later open finds the log in order and says nothing.
    await createPostgresEventStore(database, { logger });
    expect(logged).toHaveLength(1);
  });

  it('leaves a log of this cluster alone', async () => {
    const store = await createPostgresEventStore(database);
    await store.appendToStream('s', [newEvent('E'), newEvent('E')], { expectedRevision: 'no_stream' });
    const positions = (await store.readAll({ after: null, maxCount: 10 })).map((e) => e.position);
    expect(await findLogFromTheFuture(database.pool)).toBeNull();
    const reopened = await createPostgresEventStore(database);
    expect((await reopened.readAll({ after: null, maxCount: 10 })).map((e) => e.position)).toEqual(positions);
  });

  it('two processes opening a log from the future at once: one re-stamps it, the other finds it done', async () => {
    if (factory.name !== 'postgres')
      return reportSkipped('concurrent log order repair needs two processes on one database (PostgreSQL server); not applicable to pglite');
    const store = await createPostgresEventStore(database);
    for (let i = 0; i < 3; i += 1) await store.appendToStream(`s-${i}`, [newEvent('E')], { expectedRevision: 'no_stream' });
    await database.pool.query(`update es_events set transaction_id = ($1::bigint + global_position)::text::xid8`, [String(FUTURE)]);
    const { rows } = await database.pool.query<{ schema: string }>('select current_schema() as schema');
    const other = await openPostgres(process.env.DATABASE_URL!, { schema: rows[0]!.schema });
    try {
      const repairs = await Promise.all([repairLogOrder(database), repairLogOrder(other)]);
      expect(repairs.filter((r) => r !== null).map((r) => r!.events)).toEqual([3]);
    } finally {
      await other.close();
    }
    expect((await store.readAll({ after: null, maxCount: 10 })).map((e) => e.position)).toEqual(['3:1', '3:2', '3:3']);
  });
});
