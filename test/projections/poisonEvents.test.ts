/**
 * Poison events (issue 28): an event a projection cannot apply is recorded as a dead letter, logged
 * once, and either halts that projection right at it (ON_POISON_EVENT=stop, the default) or is parked
 * and passed (park); the other projections go on. retry applies it again (the projection resumes when
 * it applies), skip moves the projection past it. Real projections on real databases, the poison
 * appended through the EventStore port with data its schema refuses.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import pino from 'pino';
import { v4 as uuidv4 } from 'uuid';
import type { Database } from '../../src/database/database.js';
import { readWholeStream } from '../../src/eventStore/eventStore.js';
import { createPostgresEventStore, type PostgresEventStore } from '../../src/eventStore/postgresEventStore.js';
import type { Logger } from '../../src/logger.js';
import { createDeadLetters, type DeadLetters } from '../../src/projections/deadLetters.js';
import { withDeadLetters, type PoisonPolicy } from '../../src/projections/deadLetterGuard.js';
import { applying } from '../../src/projections/poison.js';
import type { Projection } from '../../src/projections/projection.js';
import { createProjectionRunner, type ProjectionRunner } from '../../src/projections/projectionRunner.js';
import { createProjections } from '../../src/projections/registry.js';
import { rebuild } from '../../src/projections/replay.js';
import { checkpointsSchema, deleteCheckpoint, readCheckpoint, storeCheckpoint } from '../../src/readModels/checkpoints.js';
import { createLicenseStore } from '../../src/readModels/licenseStore.js';
import { createPostgresDeviceDispenseStore } from '../../src/readModels/postgresDeviceDispenseStore.js';
import { databaseFactories } from '../support/databases.js';
import { eventually, newEvent } from '../support/events.js';

/** A logger whose lines the test reads. */
function capturingLogger(): { logger: Logger; lines: () => Array<{ msg: string; projection?: string; level: number }> } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines: () => lines.map((l) => JSON.parse(l) as { msg: string; projection?: string; level: number }) };
}

const actor = { at: '2026-12-01T10:00:00.000Z', by: 'user-1', legal_entity_id: 'le-1' };
const stopped = (id: string) => newEvent('DeviceDispenseStopped', { id, ...actor });
const HALTED = 'projection cannot apply an event: halted at it (ON_POISON_EVENT=stop); retry or skip it: cli projections poison list';
const PARKED = 'projection cannot apply an event: parked as a dead letter, going on without it (ON_POISON_EVENT=park)';

describe.each(databaseFactories())('poison events on $name', (factory) => {
  let database: Database;
  let store: PostgresEventStore;
  let deadLetters: DeadLetters;
  const runners: ProjectionRunner[] = [];
  beforeAll(async () => {
    database = await factory.open();
    store = await createPostgresEventStore(database, { pollIntervalMs: 20 });
    deadLetters = await createDeadLetters(database);
  });
  afterAll(async () => {
    for (const runner of runners) await runner.stop();
    await database.close();
  });

  /** The three projections behind their dead letters, each in a runner, on tables of their own (`suffix`). */
  async function startAll(onPoison: PoisonPolicy, logger: Logger) {
    const suffix = uuidv4().slice(0, 8);
    const projections = await createProjections(
      {
        database,
        deviceDispenses: await createPostgresDeviceDispenseStore(database, { table: `dd_${suffix}` }),
        licenses: await createLicenseStore(database),
      },
      { deadLetters, onPoison, logger },
    );
    const started = Object.values(projections).map((projection) =>
      createProjectionRunner({ store, database, projection, logger, deadLetters, poisonPollMs: 30, batchSize: 100 }),
    );
    for (const runner of started) await runner.start();
    runners.push(...started);
    const [deviceDispenses, licenses, statusChangeEvents] = started as [ProjectionRunner, ProjectionRunner, ProjectionRunner];
    return { deviceDispenses, licenses, statusChangeEvents };
  }
  const statusOf = async (id: string) =>
    (await database.pool.query<{ status: string }>(`select status from event_manager_entity_status where entity_id = $1`, [id])).rows[0]?.status ?? null;
  const letterOf = async (projection: string, eventId: string) => (await deadLetters.list({ projection })).find((l) => l.event_id === eventId)!;

  it('stop: each projection that cannot apply it halts right before it, the others go on; skip and retry act on it', async () => {
    await database.pool.query('truncate projection_dead_letters');
    const [before, poisoned, after] = [uuidv4(), uuidv4(), uuidv4()];
    await store.appendToStream(`device_dispense-${before}`, [stopped(before)], { expectedRevision: 'no_stream' });
    const poison = await store.appendToStream(`device_dispense-${poisoned}`, [newEvent('DeviceDispenseCreated', { garbage: true })], {
      expectedRevision: 'no_stream',
    });
    const head = await store.appendToStream(`device_dispense-${after}`, [stopped(after)], { expectedRevision: 'no_stream' });
    const [poisonEvent] = await readWholeStream(store, `device_dispense-${poisoned}`);
    const { logger, lines } = capturingLogger();
    const { deviceDispenses, licenses, statusChangeEvents } = await startAll('stop', logger);

    // Licences read nothing of it: they reach the head. The other two halt at the poison event.
    await licenses.waitFor(head.position, 10_000);
    await eventually(async () => (await statusChangeEvents.status()).halted !== null && (await deviceDispenses.status()).halted !== null, 10_000, 'halts');
    const scLetter = await letterOf('status_change_events', poisonEvent!.metadata.eventId);
    const ddLetter = await letterOf('device_dispenses', poisonEvent!.metadata.eventId);
    expect(scLetter).toEqual({
      id: expect.any(String),
      projection: 'status_change_events',
      event_id: poisonEvent!.metadata.eventId,
      position: poison.position,
      stream_name: `device_dispense-${poisoned}`,
      revision: '0',
      event_type: 'DeviceDispenseCreated',
      error: 'at: Invalid input: expected string, received undefined',
      status: 'halted',
      attempts: 1,
      recorded_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      updated_at: expect.any(String),
    });
    expect(ddLetter).toMatchObject({ status: 'halted', error: 'data.dispense: Invalid input: expected object, received undefined', attempts: 1 });
    expect((await statusChangeEvents.status()).halted).toEqual({
      dead_letter_id: scLetter.id,
      event_id: poisonEvent!.metadata.eventId,
      position: poison.position,
    });
    // Applied up to just before it, nothing after it.
    expect(await statusOf(before)).toBe('stopped');
    expect(await statusOf(after)).toBe(null);
    const beforePosition = (await readWholeStream(store, `device_dispense-${before}`))[0]!.position;
    expect(await readCheckpoint(database.pool, 'status_change_events')).toBe(beforePosition);
    // Logged once each, not retried in a loop.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(
      lines()
        .filter((l) => l.msg === HALTED)
        .map((l) => l.projection)
        .sort(),
    ).toEqual(['device_dispenses', 'status_change_events']);
    expect(lines().filter((l) => /recovered|retrying/.test(l.msg))).toEqual([]);
    expect(await statusOf(after)).toBe(null);

    // skip: the projection moves past it and applies what follows.
    expect((await deadLetters.skip(scLetter.id)).status).toBe('skipped');
    await statusChangeEvents.waitFor(head.position, 10_000);
    expect(await statusOf(after)).toBe('stopped');
    expect(await statusOf(poisoned)).toBe(null);
    expect((await statusChangeEvents.status()).halted).toBe(null);

    // retry: tried again; still poison, so halted again with a second attempt (and no second error line).
    expect((await deadLetters.retry(ddLetter.id)).status).toBe('retrying');
    await eventually(async () => (await letterOf('device_dispenses', poisonEvent!.metadata.eventId)).attempts === 2, 10_000, 'second attempt');
    expect(await letterOf('device_dispenses', poisonEvent!.metadata.eventId)).toMatchObject({ status: 'halted', attempts: 2 });
    expect((await deviceDispenses.status()).halted).toMatchObject({ dead_letter_id: ddLetter.id });
    expect(lines().filter((l) => l.msg === HALTED)).toHaveLength(2);
    expect(
      lines()
        .filter((l) => l.msg === 'event still cannot be applied (halted)')
        .map((l) => l.projection),
    ).toEqual(['device_dispenses']);
    // A skipped letter cannot be retried; an unknown one is not found.
    await expect(deadLetters.retry(scLetter.id)).rejects.toThrow(`Dead letter ${scLetter.id} is skipped: it cannot be retried`);
    await expect(deadLetters.skip(uuidv4())).rejects.toThrow(/^No dead letter /);
    await deadLetters.skip(ddLetter.id);
    await deviceDispenses.waitFor(head.position, 10_000);
    // Stopping a halted-then-resumed runner is quick.
    for (const runner of [deviceDispenses, licenses, statusChangeEvents]) await runner.stop();
  }, 60_000);

  it('park: recorded once and passed; the projection reaches the head without it', async () => {
    await database.pool.query('truncate projection_dead_letters');
    const [poisoned, after] = [uuidv4(), uuidv4()];
    await store.appendToStream(`device_dispense-${poisoned}`, [newEvent('DeviceDispenseCompleted', { id: poisoned, ...actor })], {
      expectedRevision: 'no_stream',
    });
    const head = await store.appendToStream(`device_dispense-${after}`, [stopped(after)], { expectedRevision: 'no_stream' });
    const { logger, lines } = capturingLogger();
    const { deviceDispenses, statusChangeEvents, licenses } = await startAll('park', logger);
    for (const runner of [deviceDispenses, statusChangeEvents, licenses]) await runner.waitFor(head.position, 10_000);
    // The completion lacks its signed_content_link and when_handed_over: device_dispenses cannot apply it; the status change needs who and when only.
    expect((await deadLetters.list()).map((l) => [l.projection, l.status, l.error])).toEqual([
      ['device_dispenses', 'parked', 'data.when_handed_over: Invalid input: expected string, received undefined'],
    ]);
    expect(await statusOf(after)).toBe('stopped');
    expect(
      lines()
        .filter((l) => l.msg === PARKED)
        .map((l) => l.projection),
    ).toEqual(['device_dispenses']);
    expect(deadLetters.excluded('device_dispenses').size).toBe(1);
    // A parked event cannot be skipped twice, and a retried one waits for the next rebuild.
    const [letter] = await deadLetters.list();
    expect((await deadLetters.retry(letter!.id)).status).toBe('retrying');
    expect((await deadLetters.skip(letter!.id)).status).toBe('skipped');
    await expect(deadLetters.skip(letter!.id)).rejects.toThrow(`Dead letter ${letter!.id} is skipped: it cannot be skipped`);
    for (const runner of [deviceDispenses, statusChangeEvents, licenses]) await runner.stop();
  }, 60_000);

  /** Counts events per stream; fails on the event with `bad: true` while `broken` says so, with a named or an unnamed error. */
  async function flakyProjection(name: string, stream: string, state: { broken: boolean; named: boolean }): Promise<Projection> {
    await database.migrate('projection_checkpoints', checkpointsSchema);
    await database.migrate('poison_counts', 'create table if not exists poison_counts (projection text, event_id text, primary key (projection, event_id))');
    return {
      name,
      readCheckpoint: () => readCheckpoint(database.pool, name),
      relevant: (event) => event.streamName === stream,
      async handle(events, checkpoint) {
        await database.withTransaction(async (client) => {
          for (const event of events.filter((e) => e.streamName === stream)) {
            const fail = state.broken && (event.data as { bad?: boolean }).bad === true;
            if (fail && state.named) applying(name, event, () => JSON.parse('{not json'));
            if (fail) await client.query('select 1 / 0'); // a database error no event is named by (22012)
            await client.query('insert into poison_counts values ($1, $2)', [name, event.metadata.eventId]);
          }
          await storeCheckpoint(client, { projection: name, ...checkpoint });
        });
      },
      async reset() {
        await database.withTransaction(async (client) => {
          await client.query('delete from poison_counts where projection = $1', [name]);
          await deleteCheckpoint(client, name);
        });
      },
    };
  }
  const applied = async (name: string) =>
    (await database.pool.query<{ event_id: string }>('select event_id from poison_counts where projection = $1', [name])).rows.map((r) => r.event_id);

  it.each([
    ['named by the projection', true],
    ['a database error in a batch (found by applying the batch one event at a time)', false],
  ])(
    'retry resumes once the event applies (%s)',
    async (_name, named) => {
      await database.pool.query('truncate projection_dead_letters');
      const name = `flaky_${uuidv4().slice(0, 8)}`;
      const stream = `flaky-${uuidv4()}`;
      const events = [newEvent('A', { n: 1 }), newEvent('B', { bad: true }), newEvent('C', { n: 3 })];
      const appended = await store.appendToStream(stream, events, { expectedRevision: 'no_stream' });
      const state = { broken: true, named };
      const { logger, lines } = capturingLogger();
      const projection = withDeadLetters(await flakyProjection(name, stream, state), { deadLetters, onPoison: 'stop', logger });
      const runner = createProjectionRunner({ store, database, projection, logger, deadLetters, poisonPollMs: 30 });
      runners.push(runner);
      await runner.start();
      await eventually(async () => (await runner.status()).halted !== null, 10_000, 'halt');
      expect(await applied(name)).toEqual([events[0]!.metadata.eventId]);
      const [letter] = await deadLetters.list({});
      expect(letter).toMatchObject({
        projection: name,
        event_id: events[1]!.metadata.eventId,
        status: 'halted',
        error: named ? expect.stringMatching(/JSON/) : 'division by zero',
      });
      state.broken = false;
      await deadLetters.retry(letter!.id);
      await runner.waitFor(appended.position, 10_000);
      expect(await applied(name)).toEqual(events.map((e) => e.metadata.eventId));
      expect(await deadLetters.get(letter!.id)).toMatchObject({ status: 'resolved' });
      expect(lines().filter((l) => l.msg === 'retried event(s) applied; dead letter(s) resolved')).toHaveLength(1);
      await runner.stop();
    },
    60_000,
  );

  it('park, then retry: the next rebuild applies the parked event in order; a skipped one it leaves out', async () => {
    await database.pool.query('truncate projection_dead_letters');
    const name = `parked_${uuidv4().slice(0, 8)}`;
    const stream = `parked-${uuidv4()}`;
    const events = [newEvent('A', { n: 1 }), newEvent('B', { bad: true }), newEvent('C', { bad: true }), newEvent('D', { n: 4 })];
    const appended = await store.appendToStream(stream, events, { expectedRevision: 'no_stream' });
    const state = { broken: true, named: true };
    const { logger } = capturingLogger();
    const projection = withDeadLetters(await flakyProjection(name, stream, state), { deadLetters, onPoison: 'park', logger });
    const runner = createProjectionRunner({ store, database, projection, logger, deadLetters, poisonPollMs: 30 });
    runners.push(runner);
    await runner.start();
    await runner.waitFor(appended.position, 10_000);
    await runner.stop();
    const ids = events.map((e) => e.metadata.eventId);
    expect((await applied(name)).sort()).toEqual([ids[0], ids[3]].sort());
    const [b, c] = await deadLetters.list({ projection: name });
    expect([b!.event_id, b!.status, c!.event_id, c!.status]).toEqual([ids[1], 'parked', ids[2], 'parked']);
    state.broken = false;
    await deadLetters.retry(b!.id);
    await deadLetters.skip(c!.id);
    await rebuild(store, database, projection);
    expect((await applied(name)).sort()).toEqual([ids[0], ids[1], ids[3]].sort());
    expect((await deadLetters.list({ projection: name })).map((l) => [l.event_id, l.status])).toEqual([
      [ids[1], 'resolved'],
      [ids[2], 'skipped'],
    ]);
  }, 60_000);
});
