/**
 * What an MIS does with a dispense, through the HTTP API only: create, read, complete (signed),
 * and for other dispenses stop and mark in error (signed); each job's answer and the GET after it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { createBody, ids } from '../support/fixtures.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';

describe.each(testBackends())('device dispense lifecycle on %s', (backend) => {
  let t: TestServer;
  let auth: string;
  beforeAll(async () => {
    t = await startTestServer({ backend });
    auth = `Bearer ${await t.token()}`;
  });
  afterAll(async () => t.close());

  const base = `/api/patients/${ids.patient}/device_dispenses`;

  async function create(id: string, overrides: Record<string, unknown> = {}) {
    const accepted = await request(t.app).post(base).set('authorization', auth).send(createBody(id, overrides));
    expect(accepted.status).toBe(202);
    return t.waitForJob(accepted.body.data.links[0].href);
  }
  const get = (id: string) => request(t.app).get(`${base}/${id}`).set('authorization', auth);
  const action = async (id: string, name: string, body?: object) => {
    const req = request(t.app).patch(`${base}/${id}/actions/${name}`).set('authorization', auth);
    const accepted = await (body ? req.send(body) : req);
    expect(accepted.status).toBe(202);
    return t.waitForJob(accepted.body.data.links[0].href);
  };

  it('creates, completes with a signature, and each GET right after the job shows the change', async () => {
    const id = newId();
    const created = await create(id);
    expect(created.status).toBe(303);
    expect(created.body.data).toMatchObject({ status: 'processed', status_code: '200', links: [{ entity: 'device_dispense', href: `${base}/${id}` }] });

    const afterCreate = await get(id);
    expect(afterCreate.status).toBe(200);
    expect(afterCreate.body.data).toMatchObject({ id, status: 'in_progress', inserted_by: ids.user });

    const signed = await t.sign({
      ...afterCreate.body.data,
      status: 'completed',
      when_handed_over: new Date().toISOString(),
      payment_amount: 50,
      payment_id: 'R-1',
    });
    const completed = await action(id, 'complete', { signed_data: signed });
    expect(completed.body.data).toMatchObject({ status: 'processed' });
    const afterComplete = await get(id);
    expect(afterComplete.body.data).toMatchObject({ status: 'completed', payment_amount: 50, payment_id: 'R-1' });
    expect(afterComplete.body.data).not.toHaveProperty('signed_content_links');
  });

  it('stops one dispense and marks another in error', async () => {
    const [toStop, toMark] = [newId(), newId()];
    // The first test completed a dispense of ids.deviceRequest, which completes that request.
    await create(toStop, {
      based_on: { identifier: { type: { coding: [{ system: 'eHealth/resources', code: 'device_request' }] }, value: ids.secondRequest } },
    });
    expect((await action(toStop, 'stop')).body.data.status).toBe('processed');
    expect((await get(toStop)).body.data.status).toBe('stopped');

    await create(toMark, {
      based_on: { identifier: { type: { coding: [{ system: 'eHealth/resources', code: 'device_request' }] }, value: ids.secondRequest } },
    });
    const current = (await get(toMark)).body.data;
    const signed = await t.sign({
      ...current,
      status: 'entered_in_error',
      status_reason: { coding: [{ system: 'device_dispense_mark_in_error_reasons', code: 'incorrect_device' }] },
    });
    expect((await action(toMark, 'mark_in_error', { signed_data: signed })).body.data.status).toBe('processed');
    const marked = (await get(toMark)).body.data;
    expect(marked.status).toBe('entered_in_error');
    expect(marked.status_reason.coding[0].code).toBe('incorrect_device');
  });
});
