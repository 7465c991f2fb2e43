/**
 * Given a log the planner has no statistics for (freshly loaded, autovacuum not yet run),
 * when a rebuild reads it by stream,
 * then each page walks the primary key: without the store's plan setting the planner sorts the whole
 * log for every page (1.1 s per 5,000-event page at 200k events, so a rebuild grew quadratically).
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { Database } from '../../src/database/database.js';
import { createPostgresEventStore, READ_BY_STREAM_SQL, STREAM_ORDER_PLAN } from '../../src/eventStore/postgresEventStore.js';
import { databaseFactories } from '../support/databases.js';

const params = ['', '-1', '999999999', '999999999', 1000, ['device\\_dispense-%']];

describe.each(databaseFactories())('stream-order reads on $name', (factory) => {
  let database: Database;
  beforeEach(async () => {
    database = await factory.open();
  });
  afterEach(async () => database.close());

  /** The text plan of `sql` in a transaction that first applies `settings` (none: the default plan). */
  async function plan(settings: string | null, sql: string, values: unknown[] = []): Promise<string> {
    return database.withTransaction(async (client) => {
      if (settings) await client.query(settings);
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(`explain ${sql}`, values);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });
  }

  /** A loaded log the way import writes it: many small streams, never analyzed. */
  async function loadUnanalyzedLog() {
    const store = await createPostgresEventStore(database);
    await database.pool.query('alter table es_events set (autovacuum_enabled = false)');
    await database.pool.query(
      `insert into es_events (stream_name, revision, event_id, event_type, data, metadata)
       select 'device_dispense-' || (g / 2), g % 2, gen_random_uuid(), 'DeviceDispenseCreated', jsonb_build_object('text', repeat('x', 800)), '{}'
       from generate_series(0, 4999) g`,
    );
    return store;
  }

  it('walks the primary key without statistics, where the default plan sorts the log', async () => {
    const store = await loadUnanalyzedLog();
    expect(await plan(null, READ_BY_STREAM_SQL, params)).toMatch(/Sort/); // the hazard is real on this database
    const chosen = await plan(STREAM_ORDER_PLAN, READ_BY_STREAM_SQL, params);
    expect(chosen).toMatch(/Index Scan using es_events_pkey/);
    expect(chosen).not.toMatch(/Sort/);

    // And readByStream itself returns the streams in order, page by page.
    const head = (await store.headPosition())!;
    const first = await store.readByStream!({ after: null, until: head, maxCount: 3, streamPrefixes: ['device_dispense-'] });
    expect(first.map((e) => [e.streamName, e.revision])).toEqual([
      ['device_dispense-0', 0n],
      ['device_dispense-0', 1n],
      ['device_dispense-1', 0n],
    ]);
  });

  it('walks the log-order index for the whole log in log order (export, verify --history), where the default plan sorts it', async () => {
    await loadUnanalyzedLog();
    const logOrder = `select stream_name, data from es_events where transaction_id < pg_snapshot_xmin(pg_current_snapshot()) order by transaction_id, global_position`;
    expect(await plan(null, logOrder)).toMatch(/Sort/);
    const chosen = await plan(STREAM_ORDER_PLAN, logOrder);
    expect(chosen).toMatch(/Index Scan using es_events_global_order/);
    expect(chosen).not.toMatch(/Sort/);
  });
});
