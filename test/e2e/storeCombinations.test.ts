/**
 * The MIS round trip on every store combination of test/support/storeCombinations.ts — PGlite;
 * PostgreSQL; PostgreSQL + MongoDB read model; EventStoreDB + MongoDB + PostgreSQL (production) — over
 * HTTP: create, get, both searches, complete (signed), stop, mark in error (signed), licences,
 * StatusChangeEvents delivered to a local receiver, audit reads, then `rebuild all` and `verify` from
 * the CLI. A combination whose servers are not configured prints one `skipped:` line.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import type { StatusChangeEvent } from '../../src/eventManager/eventManagerLog.js';
import { deviceRequestPool, dispenseApi, dispensesPath } from '../deviceDispenses/helpers.js';
import { createLicenseBody } from '../licenses/helpers.js';
import { runCli } from '../support/cli.js';
import { eventually } from '../support/events.js';
import { ids, referenceData } from '../support/fixtures.js';
import { combinationEnv, runnableCombinations } from '../support/storeCombinations.js';
import { newId, startTestServer, type TestServer } from '../support/testServer.js';

async function startReceiver(): Promise<{ received: StatusChangeEvent[]; url: string; close(): Promise<void> }> {
  const received: StatusChangeEvent[] = [];
  const server: Server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body) as StatusChangeEvent);
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { received, url: `http://127.0.0.1:${port}/events`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe.each(runnableCombinations('end-to-end: '))('MIS round trip on $name', (combination) => {
  let t: TestServer;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const data = referenceData();
  const nextRequest = deviceRequestPool(data, 3);
  // The licence steps act for a legal entity of their own (a copy of the fixture pharmacy and its primary
  // licence): an EventStoreDB is shared by every run, and a second additional licence would be a 409.
  const licensee = newId();
  data.legal_entities.push({ ...data.legal_entities.find((le) => le.id === ids.legalEntity)!, id: licensee });
  data.licenses.push({ ...data.licenses.find((l) => l.legal_entity_id === ids.legalEntity && l.is_primary)!, id: newId(), legal_entity_id: licensee });
  // Licence methods are an employee's (caller classes): the pharmacist works for the licensee too.
  data.employees.push({ ...data.employees.find((e) => e.id === ids.employee)!, id: newId(), legal_entity_id: licensee });
  const dispensed: Record<'completed' | 'stopped' | 'entered_in_error', string> = { completed: '', stopped: '', entered_in_error: '' };
  const auth = async () => `Bearer ${await t.token()}`;
  let headBefore: string | null = null;

  beforeAll(async () => {
    receiver = await startReceiver();
    t = await startTestServer({
      data,
      backend: combination.database,
      env: { ...combinationEnv(combination), EVENT_MANAGER_URL: receiver.url, EVENT_MANAGER_RETRY_MIN_MS: '50' },
    });
    headBefore = await t.server.context.eventStore.headPosition(); // a shared EventStoreDB has history
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  it('runs on the stores it names', async () => {
    const { context } = t.server;
    expect(context.eventStore.kind).toBe(combination.eventStore);
    expect(context.config.MONGO_URL !== undefined).toBe(combination.deviceDispenses === 'mongodb');
  });

  it('creates, gets, searches, completes (signed), stops and marks in error (signed)', async () => {
    const api = dispenseApi(t);
    const first = await api.createInProgress(nextRequest());
    const patientSearch = await request(t.app)
      .get(`${dispensesPath()}?page_size=50`)
      .set('authorization', await auth());
    expect(patientSearch.status).toBe(200);
    expect(patientSearch.body.data.map((d: { id: string }) => d.id)).toContain(first.id);
    const entitySearch = await request(t.app)
      .get(`/api/device_dispenses?page_size=50&status=in_progress`)
      .set('authorization', await auth());
    expect(entitySearch.status).toBe(200);
    expect(entitySearch.body.data.map((d: { id: string }) => d.id)).toContain(first.id);

    expect((await api.complete(first)).status).toBe('completed');
    dispensed.completed = first.id;
    const second = await api.createInProgress(nextRequest());
    expect((await api.stop(second.id)).status).toBe('stopped');
    dispensed.stopped = second.id;
    const third = await api.createInProgress(nextRequest());
    expect((await api.markInError(third)).status).toBe('entered_in_error');
    dispensed.entered_in_error = third.id;

    const completedOnly = await request(t.app)
      .get(`${dispensesPath()}?status=completed&page_size=50`)
      .set('authorization', await auth());
    const completedIds = completedOnly.body.data.map((d: { id: string }) => d.id);
    expect(completedIds).toContain(first.id);
    expect(completedIds).not.toContain(second.id);
    expect(completedIds).not.toContain(third.id);
  }, 120_000);

  it('creates, updates, lists and reads a licence', async () => {
    const auth = async () => `Bearer ${await t.token({ client_id: licensee })}`;
    const created = await request(t.app)
      .post('/api/licenses')
      .set('authorization', await auth())
      .send(createLicenseBody());
    expect(created.status).toBe(201);
    const id = created.body.data.id as string;
    const updated = await request(t.app)
      .patch(`/api/licenses/${id}`)
      .set('authorization', await auth())
      .send({ is_primary: false, order_no: 'ORD-78' });
    expect([updated.status, updated.body.data.order_no]).toEqual([200, 'ORD-78']);
    const list = await request(t.app)
      .get('/api/licenses')
      .set('authorization', await auth());
    expect(list.body.data.map((l: { id: string }) => l.id)).toContain(id);
    const one = await request(t.app)
      .get(`/api/licenses/${id}`)
      .set('authorization', await auth());
    expect([one.status, one.body.data.order_no]).toEqual([200, 'ORD-78']);
  });

  it('delivers every StatusChangeEvent to the receiver', async () => {
    const statusesOf = (id: string) => receiver.received.filter((e) => e.entity_id === id).map((e) => e.properties.status.new_value);
    await eventually(() => statusesOf(dispensed.entered_in_error).includes('entered_in_error'), 20_000, 'StatusChangeEvents');
    expect(statusesOf(dispensed.completed)).toEqual(expect.arrayContaining(['in_progress', 'completed']));
    expect(statusesOf(dispensed.stopped)).toEqual(expect.arrayContaining(['in_progress', 'stopped']));
    expect(statusesOf(dispensed.entered_in_error)).toEqual(expect.arrayContaining(['in_progress', 'entered_in_error']));
  });

  it('answers audit reads: a stream with metadata, the global log, a state as of a moment', async () => {
    const stream = await request(t.app)
      .get(`/api/audit/streams/device_dispense-${dispensed.completed}/events`)
      .set('authorization', await auth());
    expect(stream.status).toBe(200);
    const events = stream.body.data.events ?? stream.body.data;
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(events)).toContain(ids.user);
    const after = headBefore ? `&after=${encodeURIComponent(headBefore)}` : '';
    const global = await request(t.app)
      .get(`/api/audit/events?limit=1000${after}`)
      .set('authorization', await auth());
    expect(global.status).toBe(200);
    expect(JSON.stringify(global.body.data)).toContain(dispensed.stopped);
    const asOf = await request(t.app)
      .get(`/api/audit/device_dispenses/${dispensed.completed}?as_of=${new Date().toISOString()}`)
      .set('authorization', await auth());
    expect(asOf.status).toBe(200);
    expect(JSON.stringify(asOf.body.data)).toContain('completed');
  });

  it('rebuilds every projection from the CLI and verifies the read models against a replay', async () => {
    await t.stop();
    const rebuilt = await runCli(['rebuild', 'all'], t.env);
    expect([rebuilt.code, rebuilt.stderr.match(/rebuild device_dispenses, licenses, status_change_events: \d+ events/) !== null]).toEqual([0, true]);
    const verified = await runCli(['verify', 'all'], t.env);
    expect(verified.stdout).toMatch(/device_dispenses: \d+ record\(s\) .*: equal to a fresh replay/);
    expect(verified.code).toBe(0);
  }, 120_000);
});
