/**
 * History written before the hash chain (no hash columns, some metadata still camelCase) is chained
 * once when the event store starts, the log says so, the result verifies, and appends continue the chain.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { v4 as uuidv4 } from 'uuid';
import type { Database } from '../../src/database/database.js';
import { UNCHAINED_PROBE } from '../../src/eventStore/hashChainMigration.js';
import { createPostgresEventStore } from '../../src/eventStore/postgresEventStore.js';
import { verifyStoredHistory } from '../../src/history/verifyStore.js';
import { databaseFactories } from '../support/databases.js';
import { plansBeforeAndAfterAnalyze } from '../support/queryPlans.js';
import { newEvent } from '../support/events.js';

const LEGACY_SCHEMA = `
create sequence es_global_position;
create table es_streams (stream_name text primary key, revision bigint not null);
create table es_events (
  global_position bigint not null default nextval('es_global_position'),
  transaction_id xid8 not null default pg_current_xact_id(),
  stream_name text not null, revision bigint not null, event_id uuid not null, event_type text not null,
  data jsonb not null, metadata jsonb not null, recorded_at timestamptz not null default clock_timestamp(),
  primary key (stream_name, revision));`;

describe.each(databaseFactories())('hash chain migration on $name', (factory) => {
  let database: Database;
  beforeEach(async () => {
    database = await factory.open();
  });
  afterEach(async () => database.close());

  it('chains the old rows once, logs it, and the history then verifies', async () => {
    await database.pool.query(LEGACY_SCHEMA);
    const legacy = (stream: string, revision: number, camel: boolean) => {
      const id = uuidv4();
      const metadata = camel
        ? { eventId: id, correlationId: 'c', causationId: null, userId: 'u', clientId: 'le', occurredAt: '2026-01-01T00:00:00Z', schemaVersion: 1 }
        : { event_id: id, correlation_id: 'c', causation_id: null, user_id: 'u', client_id: 'le', occurred_at: '2026-01-01T00:00:00Z', schema_version: 1 };
      return database.pool.query('insert into es_events (stream_name, revision, event_id, event_type, data, metadata) values ($1, $2, $3, $4, $5, $6)', [
        stream,
        revision,
        id,
        'Old',
        JSON.stringify({ n: revision }),
        JSON.stringify(metadata),
      ]);
    };
    for (const [stream, revision, camel] of [
      ['old-1', 0, true],
      ['old-2', 0, false],
      ['old-1', 1, false],
      ['old-1', 2, true],
    ] as const)
      await legacy(stream, revision, camel);
    await database.pool.query(`insert into es_streams values ('old-1', 2), ('old-2', 0)`);

    const logged: Array<{ msg: string; events?: number }> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line) as { msg: string }) });
    const store = await createPostgresEventStore(database, { logger });
    expect(logged).toEqual([
      expect.objectContaining({ msg: 'hash chain migration: chained 4 event(s) in 2 stream(s) written before the hash chain existed', events: 4 }),
    ]);
    const { rows } = await database.pool.query<{ n: string }>('select count(*) as n from es_events where hash is null or prev_hash is null');
    expect(rows[0]!.n).toBe('0');

    await store.appendToStream('old-1', [newEvent('New')], { expectedRevision: 2n });
    expect(await verifyStoredHistory({ eventStore: store, database }, { anchorKeys: null })).toEqual(
      expect.objectContaining({ problem: null, events: 5, streams: 2 }),
    );

    // Once: a later start finds nothing to chain and says nothing.
    await createPostgresEventStore(database, { logger });
    expect(logged).toHaveLength(1);
  });

  it('every start looks for unchained rows in a partial index, not by reading the whole log', async () => {
    await createPostgresEventStore(database);
    // Enough chained rows that reading them costs more than the index, before and after statistics.
    await database.pool.query(
      `insert into es_events (stream_name, revision, event_id, event_type, data, metadata, prev_hash, hash)
       select 'bulk-' || (i / 10), i % 10, gen_random_uuid(), 'Bulk', '{}', '{}', '\\x00', '\\x01' from generate_series(0, 19999) as i`,
    );
    const usesIndex = expect.stringContaining('"Index Name":"es_events_unchained"');
    expect(await plansBeforeAndAfterAnalyze(database, UNCHAINED_PROBE, 'es_events')).toEqual([
      [false, usesIndex],
      [true, usesIndex],
    ]);
  });
});
