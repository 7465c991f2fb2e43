/**
 * Import checks every line and writes nothing unless the whole file loads: each bad line is named by
 * its number, on PGlite (batched inserts) and on the PostgreSQL server (COPY).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { v4 as uuidv4 } from 'uuid';
import type { Database } from '../../src/database/database.js';
import { readWholeStream } from '../../src/eventStore/eventStore.js';
import { createPostgresEventStore } from '../../src/eventStore/postgresEventStore.js';
import { readHistoryFile } from '../../src/history/historyFile.js';
import { HistoryFileError, toHistoryLine, type HistoryLine } from '../../src/history/historyLine.js';
import { importHistory } from '../../src/history/importHistory.js';
import { anyEvent, domainEventCheck, type EventCheck } from '../../src/history/eventChecks.js';
import { verifyStoredHistory } from '../../src/history/verifyStore.js';
import { databaseFactories } from '../support/databases.js';
import { newEvent } from '../support/events.js';

const line = (stream: string, revision: number, data: Record<string, unknown> = { n: revision }): HistoryLine => ({
  ...toHistoryLine({ ...newEvent('Happened', {}), streamName: stream, revision: BigInt(revision), position: '0:0' }),
  data: data as HistoryLine['data'],
});

describe.each(databaseFactories())('history import checks on $name', (factory) => {
  let database: Database;
  let dir: string;
  beforeAll(async () => {
    database = await factory.open();
    dir = await mkdtemp(join(tmpdir(), 'import-checks-'));
  });
  afterAll(async () => {
    await database.close();
    await rm(dir, { recursive: true, force: true });
  });

  // These cases are about the file and the store's mechanics: their streams (s-1, …) belong to no
  // aggregate, so the events' own check is off here (the domain's check has its cases below).
  const load = async (name: string, content: string, check: EventCheck = anyEvent) => {
    const file = join(dir, `${name}.ndjson`);
    await writeFile(file, content);
    const eventStore = await createPostgresEventStore(database);
    return importHistory({ eventStore, database }, () => readHistoryFile(file), { check });
  };
  const count = async () => Number((await database.pool.query<{ n: string }>('select count(*) as n from es_events')).rows[0]!.n);

  const good = [line('s-1', 0), line('s-2', 0), line('s-1', 1)];
  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', `${JSON.stringify(good[0])}\n{broken\n`, /^line 2: not a JSON object$/],
    ['empty line', `${JSON.stringify(good[0])}\n\n${JSON.stringify(good[1])}\n`, /^line 2: empty line$/],
    ['revision gap', `${JSON.stringify(good[0])}\n${JSON.stringify(line('s-1', 2))}\n`, /^line 2: stream s-1: revision 2, expected 1$/],
    [
      'lines of a stream out of order',
      [line('s-2', 0), line('s-1', 1), line('s-1', 0)].map((l) => JSON.stringify(l)).join('\n'),
      /^line 2: stream s-1: revision 1, expected 0$/,
    ],
    [
      'a later stream broken after an earlier one',
      [line('s-1', 0), line('s-2', 0), line('s-1', 1), line('s-2', 0, { again: true }), line('s-2', 2)].map((l) => JSON.stringify(l)).join('\n'),
      /^line 4: /,
    ],
    [
      'the first broken line in file order, across streams',
      [line('s-1', 0), line('s-2', 1), line('s-1', 3)].map((l) => JSON.stringify(l)).join('\n'),
      /^line 2: stream s-2: revision 1, expected 0$/,
    ],
    ['missing field', `${JSON.stringify({ ...good[0], event_type: undefined })}\n`, /^line 1: event_type: /],
    ['bad event id', `${JSON.stringify({ ...good[0], metadata: { ...good[0]!.metadata, event_id: 'nope' } })}\n`, /^line 1: metadata\.event_id: /],
    ['duplicate event id', `${JSON.stringify(good[0])}\n${JSON.stringify({ ...good[1], metadata: good[0]!.metadata })}\n`, /^line 2: .*(duplicate|unique)/],
    [
      'duplicate revision',
      `${JSON.stringify(good[0])}\n${JSON.stringify(good[1])}\n${JSON.stringify(line('s-1', 0, { other: true }))}\n`,
      /^line 3: .*duplicate/,
    ],
    [
      'a hash its content does not give',
      `${JSON.stringify({ ...good[0], prev_hash: '0'.repeat(64), hash: 'a'.repeat(64) })}\n`,
      /^line 1: stream s-1 revision 0 \(event .*\): hash a{64} differs from its content's [0-9a-f]{64}$/,
    ],
    [
      'a prev_hash that does not link',
      `${JSON.stringify(good[0])}\n${JSON.stringify({ ...good[2], prev_hash: 'b'.repeat(64) })}\n`,
      /^line 2: stream s-1 revision 1 .*: prev_hash b{64} does not link to the previous event's hash/,
    ],
    ['NUL in data', `${JSON.stringify(good[0])}\n${JSON.stringify(line('s-3', 0, { text: 'a\u0000b' }))}\n`, /^line 2: /],
  ];

  it.each(cases)('refuses %s, naming the line, and writes nothing', async (_name, content, message) => {
    const error = await load(uuidv4(), content).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HistoryFileError);
    expect((error as Error).message).toMatch(message);
    expect(await count()).toBe(0);
  });

  it('loads a good file in order, then refuses a second load into the non-empty store', async () => {
    expect(await load('good', good.map((l) => JSON.stringify(l)).join('\n') + '\n')).toBe(3);
    const eventStore = await createPostgresEventStore(database);
    const all = await eventStore.readAll({ after: null, maxCount: 10 });
    expect(all.map((e) => [e.streamName, e.revision, e.metadata.eventId])).toEqual(good.map((l) => [l.stream_name, BigInt(l.revision), l.metadata.event_id]));
    const again = await load('again', `${JSON.stringify(line('s-9', 0))}\n`).catch((e: unknown) => e);
    expect((again as Error).message).toBe('the event store is not empty (import into an empty store, or pass --force)');
    // Appends go on from the imported revisions, and the hash chain computed on import (the lines had none).
    await eventStore.appendToStream('s-1', [newEvent('Next')], { expectedRevision: 1n });
    const verified = await verifyStoredHistory({ eventStore, database }, { anchorKeys: null });
    expect(verified).toEqual(expect.objectContaining({ problem: null, events: 4, streams: 2 }));
  });

  it('loads a file spanning many COPY chunks, with a line larger than a chunk, every text intact', async () => {
    await createPostgresEventStore(database);
    await database.pool.query('truncate es_events, es_streams');
    // Two-byte text: a chunk holds about a third of a megabyte of it; the last line alone is larger than a chunk.
    const text = (n: number) => 'Київ, вулиця Хрещатик; '.repeat(n);
    const lines = [
      ...Array.from({ length: 1_500 }, (_, i) => line(`big-${i % 40}`, Math.floor(i / 40), { text: text(40), i })),
      line('huge', 0, { text: text(40_000) }),
    ];
    expect(await load('big', lines.map((l) => JSON.stringify(l)).join('\n') + '\n')).toBe(lines.length);
    const eventStore = await createPostgresEventStore(database);
    const huge = await readWholeStream(eventStore, 'huge');
    expect(huge[0]!.data).toEqual({ text: text(40_000) });
    const some = await readWholeStream(eventStore, 'big-7');
    expect(some.map((e) => e.data)).toEqual(lines.filter((l) => l.stream_name === 'big-7').map((l) => l.data));
    // The database recomputes every hash from the stored bytes: they are the canonical texts hashed on import.
    const verified = await verifyStoredHistory({ eventStore, database }, { anchorKeys: null });
    expect(verified).toEqual(expect.objectContaining({ problem: null, events: lines.length, streams: 41 }));
  });

  describe('every event must be one a projection can apply (the domain schemas)', () => {
    const actor = { at: '2026-12-01T10:00:00.000Z', by: 'user-1', legal_entity_id: 'le-1' };
    const event = (stream: string, revision: number, type: string, data: Record<string, unknown>) => ({ ...line(stream, revision, data), event_type: type });
    const file = (...lines: HistoryLine[]) => lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
    const attached = event('device_request_dispensing-r1', 0, 'DeviceDispenseAttached', { device_request_id: 'r1', device_dispense_id: 'd1', ...actor });
    const stopped = event('device_dispense-d1', 0, 'DeviceDispenseStopped', { id: 'd1', ...actor });
    const updated = event('legal_entity_licenses-le-1', 0, 'LicenseUpdated', { id: 'l1', changes: { license_number: 'N-1' }, ...actor });
    const anchorData = {
      version: 1,
      covers: { event_count: 3, last_event_id: 'e3', position: '1:3' },
      streams: 3,
      merkle_root: 'a'.repeat(64),
      anchored_at: '2026-12-01T10:00:00.000Z',
      prev_anchor_hash: null,
      changed: [],
      jws: 'x.y.z',
    };
    const anchor = event('audit-anchors', 0, 'HistoryAnchored', anchorData);
    const cases: Array<[string, string, string]> = [
      [
        'data its schema refuses (the issue: a creation of garbage)',
        file(event('device_dispense-d9', 0, 'DeviceDispenseCreated', { garbage: true })),
        'line 1: DeviceDispenseCreated: data.dispense: Invalid input: expected object, received undefined',
      ],
      [
        'an event type no schema knows',
        file(attached, stopped, event('device_dispense-d1', 1, 'DeviceDispenseVanished', { id: 'd1', ...actor })),
        'line 3: unknown event type DeviceDispenseVanished for stream device_dispense-d1 (one of DeviceDispenseCreated, DeviceDispenseCompleted, DeviceDispenseStopped, DeviceDispenseMarkedInError, DeviceDispenseExpired)',
      ],
      [
        "another aggregate's event type in a stream",
        file(attached, event('legal_entity_licenses-le-2', 0, 'DeviceDispenseStopped', { id: 'd1', ...actor })),
        'line 2: unknown event type DeviceDispenseStopped for stream legal_entity_licenses-le-2 (one of LicenseImported, LicenseCreated, LicenseUpdated)',
      ],
      [
        'a stream of no aggregate',
        file(attached, line('s-1', 0)),
        'line 2: stream s-1 belongs to no aggregate of this registry (streams start with device_dispense-, device_request_dispensing-, legal_entity_licenses-, audit-anchors)',
      ],
      [
        'an anchor whose data is not an anchor',
        file(attached, event('audit-anchors', 0, 'HistoryAnchored', { ...anchorData, merkle_root: 'nope' })),
        'line 2: HistoryAnchored: data.merkle_root: Invalid string: must match pattern /^[0-9a-f]{64}$/',
      ],
      [
        'a licence change of the wrong type',
        file(updated, event('legal_entity_licenses-le-1', 1, 'LicenseUpdated', { id: 'l1', changes: { license_number: 7 }, ...actor })),
        'line 2: LicenseUpdated: data.changes.license_number: Invalid input: expected string, received number',
      ],
    ];
    it.each(cases)('refuses %s, naming the line, and writes nothing', async (_name, content, message) => {
      await database.pool.query('truncate es_events, es_streams');
      const error = await load(uuidv4(), content, domainEventCheck).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HistoryFileError);
      expect((error as Error).message).toBe(message);
      expect(await count()).toBe(0);
    });

    it('loads events of every aggregate that pass their schemas', async () => {
      await database.pool.query('truncate es_events, es_streams');
      expect(await load('domain-good', file(attached, stopped, updated, anchor), domainEventCheck)).toBe(4);
      expect(await count()).toBe(4);
    });
  });
});
