/**
 * Poison events through the server (issue 28): appended through the EventStore port with data the
 * schema refuses, they halt the two projections that read them while commands, queries and the
 * licences projection go on; /health/ready stays 200 and lists them under `degraded`; /metrics counts
 * them; the admin endpoints list, retry and skip them (ЕСОЗ errors for bad ids and wrong states).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { loadConfig } from '../../src/config.js';
import { openPGlite } from '../../src/database/pglite.js';
import { createPostgresEventStore } from '../../src/eventStore/postgresEventStore.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createJobStore } from '../../src/jobs/jobStore.js';
import { eventManagerSchema } from '../../src/eventManager/eventManagerLog.js';
import { basedOn, deviceRequestPool, dispensesPath } from '../deviceDispenses/helpers.js';
import { eventually, newEvent } from '../support/events.js';
import { createBody, referenceData } from '../support/fixtures.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';

type Letter = { id: string; projection: string; event_id: string; status: string; attempts: number; error: string };
const POISON = '/api/admin/projections/poison';

describe.each(testBackends())('poison events through the server on %s (ON_POISON_EVENT=stop)', (backend) => {
  let t: TestServer;
  const data = referenceData();
  const nextRequest = deviceRequestPool(data, 2);
  let admin: string;
  let eventId: string;
  beforeAll(async () => {
    t = await startTestServer({ backend, data });
    admin = `Bearer ${await t.token({ scope: 'admin:read admin:write' })}`;
    const poison = newEvent('DeviceDispenseCreated', { garbage: true });
    eventId = poison.metadata.eventId;
    await t.server.context.eventStore.appendToStream(`device_dispense-${newId()}`, [poison], { expectedRevision: 'no_stream' });
  }, 60_000);
  afterAll(async () => t.close());

  const list = async (query = '') => {
    const res = await request(t.app).get(`${POISON}${query}`).set('authorization', admin);
    expect(res.status).toBe(200);
    return (res.body.data as Letter[]).sort((a, b) => a.projection.localeCompare(b.projection));
  };
  const letterOf = async (projection: string) => (await list()).find((l) => l.projection === projection)!;

  it('halts the projections that read it; readiness stays 200 and names them; metrics count them', async () => {
    await eventually(async () => (await list('?status=halted')).length === 2, 15_000, 'two halted letters');
    const letters = await list();
    expect(letters.map((l) => [l.projection, l.event_id, l.status, l.attempts, l.error])).toEqual([
      ['device_dispenses', eventId, 'halted', 1, 'data.dispense: Invalid input: expected object, received undefined'],
      ['status_change_events', eventId, 'halted', 1, 'at: Invalid input: expected string, received undefined'],
    ]);
    expect((await list('?projection=licenses')).length).toBe(0);

    const ready = await request(t.app).get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe('ready');
    expect(ready.body.failing).toBeUndefined();
    expect([...ready.body.degraded].sort((a: { part: string }, b: { part: string }) => a.part.localeCompare(b.part))).toEqual(
      letters.map((l) => ({
        part: `projection ${l.projection}`,
        reason: `halted at event ${eventId} (dead letter ${l.id}): retry or skip it (GET /api/admin/projections/poison)`,
      })),
    );

    const projections = await request(t.app).get('/api/admin/projections').set('authorization', admin);
    expect(
      (projections.body.data as Array<{ name: string; halted: unknown; lag: number }>)
        .map((p) => [p.name, p.halted, p.lag])
        .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    ).toEqual([
      ['device_dispenses', { dead_letter_id: letters[0]!.id, event_id: eventId, position: expect.any(String) }, 1],
      ['licenses', null, 0],
      ['status_change_events', { dead_letter_id: letters[1]!.id, event_id: eventId, position: expect.any(String) }, 1],
    ]);

    const metrics = await request(t.app).get('/metrics').set('authorization', admin);
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/^esoz_projection_dead_letters\{projection="device_dispenses",status="halted"\} 1$/m);
    expect(metrics.text).toMatch(/^esoz_projection_dead_letters\{projection="status_change_events",status="halted"\} 1$/m);
    expect(metrics.text).toMatch(/^esoz_projection_dead_letters\{projection="licenses",status="halted"\} 0$/m);
  });

  it('commands and queries go on meanwhile', async () => {
    const id = newId();
    const accepted = await request(t.app)
      .post(dispensesPath())
      .set('authorization', `Bearer ${await t.token()}`)
      .send(createBody(id, basedOn(nextRequest())));
    expect(accepted.status).toBe(202);
    expect((await t.waitForJob(accepted.body.data.links[0].href)).status).toBe(303);
    const read = await request(t.app)
      .get(`${dispensesPath()}/${id}`)
      .set('authorization', `Bearer ${await t.token()}`);
    expect([read.status, read.body.data.status]).toEqual([200, 'in_progress']);
  });

  it('the admin endpoints need their scopes and answer ЕСОЗ errors for bad ids, states and filters', async () => {
    const letter = await letterOf('device_dispenses');
    const readOnly = `Bearer ${await t.token({ scope: 'admin:read' })}`;
    expect(
      (
        await request(t.app)
          .get(POISON)
          .set('authorization', `Bearer ${await t.token({ scope: 'device_dispense:read' })}`)
      ).status,
    ).toBe(403);
    expect((await request(t.app).get(POISON)).status).toBe(401);
    const denied = await request(t.app).post(`${POISON}/${letter.id}/skip`).set('authorization', readOnly);
    expect([denied.status, denied.body.error.type]).toEqual([403, 'forbidden']);
    for (const id of ['not-a-uuid', newId()]) {
      const missing = await request(t.app).post(`${POISON}/${id}/retry`).set('authorization', admin);
      expect([missing.status, missing.body.error]).toEqual([404, { type: 'not_found', message: `Dead letter ${id} not found` }]);
    }
    const badFilter = await request(t.app).get(`${POISON}?status=bogus`).set('authorization', admin);
    expect([badFilter.status, badFilter.body.error.type, badFilter.body.error.invalid[0].entry]).toEqual([422, 'validation_failed', '$.status']);
  });

  it('skip moves a projection past it, retry tries it again; a skipped letter is a 409', async () => {
    const dd = await letterOf('device_dispenses');
    const skipped = await request(t.app).post(`${POISON}/${dd.id}/skip`).set('authorization', admin);
    expect([skipped.status, skipped.body.data.status, skipped.body.data.id]).toEqual([200, 'skipped', dd.id]);
    const again = await request(t.app).post(`${POISON}/${dd.id}/skip`).set('authorization', admin);
    expect([again.status, again.body.error]).toEqual([409, { type: 'request_conflict', message: `Dead letter ${dd.id} is skipped: it cannot be skipped` }]);
    await eventually(async () => (await t.server.context.projections.deviceDispenses.status()).halted === null, 10_000, 'device_dispenses resumes');

    const sc = await letterOf('status_change_events');
    const retried = await request(t.app).post(`${POISON}/${sc.id}/retry`).set('authorization', admin);
    expect([retried.status, retried.body.data.status]).toEqual([200, 'retrying']);
    await eventually(async () => (await letterOf('status_change_events')).attempts === 2, 10_000, 'a second attempt');
    expect(await letterOf('status_change_events')).toMatchObject({ status: 'halted', attempts: 2 });
    await request(t.app).post(`${POISON}/${sc.id}/skip`).set('authorization', admin).expect(200);
    await eventually(async () => (await request(t.app).get('/health/ready')).body.degraded.length === 0, 10_000, 'nothing degraded');
    const head = await t.server.context.eventStore.headPosition();
    await t.server.context.projections.statusChangeEvents.waitFor(head!, 10_000);
    const metrics = await request(t.app).get('/metrics').set('authorization', admin);
    expect(metrics.text).toMatch(/^esoz_projection_dead_letters\{projection="status_change_events",status="skipped"\} 1$/m);
    expect(metrics.text).toMatch(/^esoz_projection_dead_letters\{projection="status_change_events",status="halted"\} 0$/m);
  }, 60_000);
});

describe('ON_POISON_EVENT=park through the server', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ env: { ON_POISON_EVENT: 'park' } });
  });
  afterAll(async () => t.close());

  it('parks it, every projection reaches the head, and readiness lists the parked events', async () => {
    const appended = await t.server.context.eventStore.appendToStream(`device_dispense-${newId()}`, [newEvent('DeviceDispenseCreated', { garbage: true })], {
      expectedRevision: 'no_stream',
    });
    for (const runner of Object.values(t.server.context.projections)) await runner.waitFor(appended.position, 10_000);
    const ready = await request(t.app).get('/health/ready');
    expect(ready.status).toBe(200);
    expect([...ready.body.degraded].sort((a: { part: string }, b: { part: string }) => a.part.localeCompare(b.part))).toEqual([
      { part: 'projection device_dispenses', reason: '1 event(s) parked (ON_POISON_EVENT=park): the read model lacks them' },
      { part: 'projection status_change_events', reason: '1 event(s) parked (ON_POISON_EVENT=park): the read model lacks them' },
    ]);
  });

  it('the setting is validated', () => {
    expect(loadConfig({}).ON_POISON_EVENT).toBe('stop');
    expect(() => loadConfig({ ON_POISON_EVENT: 'ignore' })).toThrow(/ON_POISON_EVENT/);
  });
});

describe('/metrics with a gauge whose source fails', () => {
  it('answers the other metrics and counts the failure', async () => {
    const database = await openPGlite();
    try {
      const eventStore = await createPostgresEventStore(database);
      await createJobStore(database, { leaseSeconds: 60 });
      await database.migrate('event_manager', eventManagerSchema);
      const metrics = createMetrics({ database, eventStore, projections: () => [], deadLetters: { counts: () => Promise.reject(new Error('unreachable')) } });
      const text = await metrics.registry.metrics();
      expect(text).not.toMatch(/^esoz_projection_dead_letters\{/m);
      expect(text).toMatch(/^esoz_jobs_pending 0$/m);
      // Counted as the gauge fails (a scrape shows the failures of the scrapes before it).
      const failures = await metrics.registry.getSingleMetric('esoz_metrics_collect_failures_total')!.get();
      expect(failures.values).toEqual([{ labels: { metric: 'esoz_projection_dead_letters' }, value: 1 }]);
      expect(await metrics.registry.metrics()).toMatch(/^esoz_metrics_collect_failures_total\{metric="esoz_projection_dead_letters"\} [12]$/m);
    } finally {
      await database.close();
    }
  });
});
