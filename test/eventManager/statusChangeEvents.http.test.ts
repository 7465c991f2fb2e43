/**
 * StatusChangeEvents are derived from the stream and delivered at least once to a real local HTTP
 * receiver that is down for the first attempts: every change arrives, in order per dispense,
 * duplicates only with the same id; a restart of our server re-sends only what was not acknowledged.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import type { StatusChangeEvent } from '../../src/eventManager/eventManagerLog.js';
import { readEventManagerLog } from '../../src/eventManager/eventManagerLog.js';
import { createBody, ids, ref } from '../support/fixtures.js';
import { eventually } from '../support/events.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';

/** A receiver that answers 200 and records every POST body; can be taken down and brought up on its port. */
async function createReceiver() {
  const received: StatusChangeEvent[] = [];
  let server: Server | null = null;
  let port = 0;
  const up = () =>
    new Promise<void>((resolve) => {
      server = createHttpServer((req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk.toString()));
        req.on('end', () => {
          received.push(JSON.parse(body) as StatusChangeEvent);
          res.writeHead(200).end('{}');
        });
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as AddressInfo).port;
        resolve();
      });
    });
  const down = () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await up(); // learn a free port …
  await down(); // … and stay down for now
  return { received, up, down, url: () => `http://127.0.0.1:${port}/events` };
}

describe.each(testBackends())('StatusChangeEvent delivery on %s', (backend) => {
  let t: TestServer;
  let receiver: Awaited<ReturnType<typeof createReceiver>>;
  beforeAll(async () => {
    receiver = await createReceiver();
    t = await startTestServer({ backend, env: { EVENT_MANAGER_URL: receiver.url(), EVENT_MANAGER_RETRY_MIN_MS: '50' } });
  });
  afterAll(async () => {
    await t.close();
    await receiver.down();
  });

  const base = `/api/patients/${ids.patient}/device_dispenses`;
  const auth = async () => `Bearer ${await t.token()}`;
  const run = async (method: 'post' | 'patch', path: string, body?: object) => {
    const req = request(t.app)
      [method](path)
      .set('authorization', await auth());
    const accepted = await (body ? req.send(body) : req);
    expect(accepted.status).toBe(202);
    const done = await t.waitForJob(accepted.body.data.links[0].href);
    expect(done.body.data.status).toBe('processed');
  };

  it('delivers every change once the receiver is up, in order per dispense', async () => {
    const [a, b] = [newId(), newId()];
    await run('post', base, createBody(a));
    await run('post', base, createBody(b, { based_on: ref('device_request', ids.secondRequest) }));
    await run('patch', `${base}/${a}/actions/stop`);
    const current = (
      await request(t.app)
        .get(`${base}/${a}`)
        .set('authorization', await auth())
    ).body.data;
    await run('patch', `${base}/${a}/actions/mark_in_error`, {
      signed_data: await t.sign({
        ...current,
        status: 'entered_in_error',
        status_reason: { coding: [{ system: 'device_dispense_mark_in_error_reasons', code: 'incorrect_patient' }] },
      }),
    });

    // Down: the derived events wait in the log and are retried.
    await eventually(async () => (await readEventManagerLog(t.server.context.database)).some((e) => e.attempts >= 2), 10_000, 'failed attempts');
    expect(receiver.received).toEqual([]);

    await receiver.up();
    await eventually(async () => (await readEventManagerLog(t.server.context.database)).every((e) => e.deliveredAt !== null), 20_000, 'delivery');

    const log = (await readEventManagerLog(t.server.context.database)).map((e) => e.payload);
    const statuses = (id: string, events: StatusChangeEvent[]) => events.filter((e) => e.entity_id === id).map((e) => e.properties.status.new_value);
    expect(statuses(a, log)).toEqual(['in_progress', 'stopped', 'entered_in_error']);
    expect(statuses(b, log)).toEqual(['in_progress']);
    // Everything arrived; in order per dispense (a repeat may only be the same id again).
    const firstSeen = (id: string) => receiver.received.filter((e, i, all) => e.entity_id === id && all.findIndex((x) => x.id === e.id) === i);
    expect(firstSeen(a).map((e) => e.properties.status.new_value)).toEqual(['in_progress', 'stopped', 'entered_in_error']);
    expect(new Set(receiver.received.map((e) => e.id))).toEqual(new Set(log.map((e) => e.id)));
    for (const event of receiver.received) expect(event).toEqual(log.find((e) => e.id === event.id));
    expect(log[0]).toMatchObject({ event_type: 'StatusChangeEvent', entity_type: 'DeviceDispense', changed_by: ids.user });
  });

  it('after a restart re-sends only what was not acknowledged', async () => {
    await receiver.down();
    const c = newId();
    await run('post', base, createBody(c, { based_on: ref('device_request', ids.noProgramRequest), program: undefined, verification_code: undefined }));
    await eventually(async () => (await readEventManagerLog(t.server.context.database, { entityId: c })).length === 1, 10_000, 'derived');
    const before = receiver.received.length;

    await t.restart();
    await receiver.up();
    await eventually(async () => (await readEventManagerLog(t.server.context.database)).every((e) => e.deliveredAt !== null), 20_000, 'delivery after restart');
    const resent = receiver.received.slice(before);
    expect(resent.map((e) => e.entity_id)).toEqual([c]);
  });
});
