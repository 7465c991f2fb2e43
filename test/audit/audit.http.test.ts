/**
 * The audit API (scope audit:read): a stream's events with their metadata, the global history from a
 * checkpoint, the state of a dispense or licence as of a moment; and projection health (admin:read).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { createBody, ids } from '../support/fixtures.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';

describe.each(testBackends())('audit API on %s', (backend) => {
  let t: TestServer;
  let auth: string;
  const dispenseId = newId();
  let beforeStop: string;
  beforeAll(async () => {
    t = await startTestServer({ backend });
    auth = `Bearer ${await t.token()}`;
    const base = `/api/patients/${ids.patient}/device_dispenses`;
    const created = await request(t.app).post(base).set('authorization', auth).send(createBody(dispenseId));
    await t.waitForJob(created.body.data.links[0].href);
    await new Promise((resolve) => setTimeout(resolve, 20));
    beforeStop = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const stopped = await request(t.app).patch(`${base}/${dispenseId}/actions/stop`).set('authorization', auth);
    await t.waitForJob(stopped.body.data.links[0].href);
  });
  afterAll(async () => t.close());

  const get = (path: string, bearer = auth) => request(t.app).get(path).set('authorization', bearer);

  it('lists the events of one stream with their metadata', async () => {
    const res = await get(`/api/audit/streams/device_dispense-${dispenseId}/events`);
    expect(res.status).toBe(200);
    expect(res.body.paging).toEqual({ page: 1, page_size: 50, total_entries: 2, total_pages: 1 });
    expect(res.body.data.map((e: { event_type: string }) => e.event_type)).toEqual(['DeviceDispenseCreated', 'DeviceDispenseStopped']);
    expect(res.body.data[1]).toMatchObject({
      stream_name: `device_dispense-${dispenseId}`,
      revision: 1,
      data: { id: dispenseId, by: ids.user, legal_entity_id: ids.legalEntity },
      metadata: { user_id: ids.user, client_id: ids.legalEntity, schema_version: 1 },
    });
    const { metadata } = res.body.data[1];
    expect(metadata.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/); // uuid v7
    expect(metadata.causation_id).toMatch(/^[0-9a-f-]{36}$/); // the stop job
    expect(Date.parse(metadata.occurred_at)).not.toBeNaN();
    expect((await get('/api/audit/streams/device_dispense-nope/events')).status).toBe(404);
  });

  it('reads the global history from a checkpoint, page by page', async () => {
    const first = await get('/api/audit/events?limit=2');
    expect(first.status).toBe(200);
    expect(first.body.data.events).toHaveLength(2);
    // The global log shows a commit once every transaction begun before it has ended (gap safety): on a
    // server shared with other suites, their open transactions can hold the Stop back for a moment, so
    // read on from the checkpoint as an auditor would (bounded).
    const stopped = (events: Array<{ event_type: string }>) => events.some((e) => e.event_type === 'DeviceDispenseStopped');
    let all = [...first.body.data.events];
    let checkpoint: string = first.body.data.checkpoint;
    // At least one page after the first, as before; more while the Stop is not visible yet.
    for (let reads = 0, deadline = Date.now() + 10_000; reads === 0 || (!stopped(all) && Date.now() < deadline); reads++) {
      const next = await get(`/api/audit/events?limit=1000&after=${encodeURIComponent(checkpoint)}`);
      all = [...all, ...next.body.data.events];
      checkpoint = next.body.data.checkpoint;
      if (!stopped(all)) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(new Set(all.map((e: { metadata: { event_id: string } }) => e.metadata.event_id)).size).toBe(all.length);
    expect(all.some((e: { event_type: string }) => e.event_type === 'DeviceDispenseStopped')).toBe(true);
    expect((await get('/api/audit/events?after=not-a-checkpoint')).status).toBe(422);
  });

  it('shows a dispense as of a moment: in_progress before the stop, stopped after it', async () => {
    const before = await get(`/api/audit/device_dispenses/${dispenseId}?as_of=${encodeURIComponent(beforeStop)}`);
    expect(before.status).toBe(200);
    expect(before.body.data).toMatchObject({ as_of: beforeStop, revision: 0, state: { id: dispenseId, status: 'in_progress' } });
    const now = await get(`/api/audit/device_dispenses/${dispenseId}?as_of=${encodeURIComponent(new Date().toISOString())}`);
    expect(now.body.data.state.status).toBe('stopped');
    const beforeCreation = await get(`/api/audit/device_dispenses/${dispenseId}?as_of=2000-01-01T00:00:00Z`);
    expect(beforeCreation.status).toBe(404);
  });

  it('shows a licence as of a moment', async () => {
    const res = await get(`/api/audit/licenses/${ids.primaryLicense}?as_of=${encodeURIComponent(new Date().toISOString())}`);
    expect(res.status).toBe(200);
    expect(res.body.data.state).toMatchObject({ id: ids.primaryLicense, is_primary: true });
    expect((await get(`/api/audit/licenses/${ids.primaryLicense}?as_of=2000-01-01T00:00:00Z`)).status).toBe(404);
  });

  it('needs audit:read', async () => {
    const res = await get('/api/audit/events', `Bearer ${await t.token({ scope: 'device_dispense:read' })}`);
    expect(res.status).toBe(403);
    expect(res.body.error.message).toBe('Your scope does not allow to access this resource. Missing allowances: audit:read');
  });

  it('reports each projection’s checkpoint and lag (admin:read)', async () => {
    const res = await get('/api/admin/projections');
    expect(res.status).toBe(200);
    expect(res.body.data.map((p: { name: string }) => p.name).sort()).toEqual(['device_dispenses', 'licenses', 'status_change_events']);
    for (const projection of res.body.data) expect(projection).toMatchObject({ active_here: true, lag: expect.any(Number) });
    expect(res.body.data.find((p: { name: string }) => p.name === 'device_dispenses').lag).toBe(0);
    expect((await get('/api/admin/projections', `Bearer ${await t.token({ scope: 'audit:read' })}`)).status).toBe(403);
  });
});
