/**
 * Event metadata is stored in snake_case (as on the wire and in history files); history stored
 * earlier in camelCase is never rewritten and still reads, exports and filters the same.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import type { Database } from '../../src/database/database.js';
import { createPostgresEventStore, type PostgresEventStore } from '../../src/eventStore/postgresEventStore.js';
import { copyHistoryOut } from '../../src/history/postgresHistory.js';
import { databaseFactories } from '../support/databases.js';
import { newEvent, uniqueStream } from '../support/events.js';

async function exportLines(database: Database, filter = {}): Promise<string[]> {
  let text = '';
  await copyHistoryOut(database, new Writable({ write: (chunk: Buffer, _e, done) => ((text += chunk.toString()), done()) }), filter);
  return text.trim().split('\n').filter(Boolean);
}

describe.each(databaseFactories())('stored event metadata on $name', (factory) => {
  let database: Database;
  let store: PostgresEventStore;
  beforeAll(async () => {
    database = await factory.open();
    store = await createPostgresEventStore(database);
  });
  afterAll(async () => database.close());

  it('stores snake_case, reads camelCase rows of older history alike, and exports both the same way', async () => {
    const fresh = newEvent('Fresh', { n: 1 }, { occurredAt: '2026-01-02T00:00:00.000Z' });
    await store.appendToStream(uniqueStream('fresh'), [fresh], { expectedRevision: 'no_stream' });
    const { rows } = await database.pool.query<{ metadata: Record<string, unknown> }>(`select metadata from es_events where event_type = 'Fresh'`);
    expect(Object.keys(rows[0]!.metadata).sort()).toEqual([
      'causation_id',
      'client_id',
      'correlation_id',
      'event_id',
      'occurred_at',
      'schema_version',
      'user_id',
    ]);

    const legacy = newEvent('Legacy', { n: 2 }, { occurredAt: '2025-01-02T00:00:00.000Z' });
    const legacyStream = uniqueStream('legacy');
    await database.pool.query(`insert into es_streams values ($1, 0)`, [legacyStream]);
    await database.pool.query(`insert into es_events (stream_name, revision, event_id, event_type, data, metadata) values ($1, 0, $2, 'Legacy', $3, $4)`, [
      legacyStream,
      legacy.metadata.eventId,
      JSON.stringify(legacy.data),
      JSON.stringify(legacy.metadata), // camelCase, as stored before
    ]);

    const all = await store.readAll({ after: null, maxCount: 10 });
    expect(all.map((e) => e.metadata)).toEqual([fresh.metadata, legacy.metadata]);

    const lines = (await exportLines(database)).map((l) => JSON.parse(l) as { metadata: Record<string, unknown> });
    expect(lines.map((l) => l.metadata)).toEqual(
      [fresh.metadata, legacy.metadata].map((m) => ({
        event_id: m.eventId,
        correlation_id: m.correlationId,
        causation_id: m.causationId,
        user_id: m.userId,
        client_id: m.clientId,
        occurred_at: m.occurredAt,
        schema_version: m.schemaVersion,
      })),
    );
    expect((await exportLines(database, { to: '2025-12-31T00:00:00Z' })).map((l) => (JSON.parse(l) as { event_type: string }).event_type)).toEqual(['Legacy']);
    expect((await exportLines(database, { from: '2025-12-31T00:00:00Z' })).map((l) => (JSON.parse(l) as { event_type: string }).event_type)).toEqual(['Fresh']);
  });
});
