/**
 * Auto-expiration (spec §1.1, "Device dispense auto-expiration"): dispenses still in_progress
 * device_dispense_ttl_days after they were inserted become `unknown`, changed by the system user;
 * a dispense in any other status is left alone, and sweeping again changes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { SYSTEM_USER_ID } from '../../src/domain/shared/decider.js';
import { readWholeStream } from '../../src/eventStore/eventStore.js';
import type { ReferenceDataFile } from '../../src/referenceData/referenceData.js';
import { eventually } from '../support/events.js';
import { createBody, ids, ref, referenceData } from '../support/fixtures.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';

/** Starting a server (and this file's fixtures) can take a while on a loaded machine. */
const SETUP_TIMEOUT_MS = 120_000;

const DAY_MS = 24 * 3600 * 1000;

function dataWith(requestIds: string[]): ReferenceDataFile {
  const data = referenceData();
  const template = data.device_requests.find((r) => r.id === ids.deviceRequest)!;
  data.device_requests.push(...requestIds.map((id) => ({ ...template, id })));
  return data;
}

describe.each(testBackends())('device dispense auto-expiration on %s', (backend) => {
  const [toExpire, toStop, createdLater] = [newId(), newId(), newId()];
  let t: TestServer;
  let auth: string;
  beforeAll(async () => {
    t = await startTestServer({ backend, data: dataWith([toExpire, toStop, createdLater]) });
    expect((await t.server.context.reference.view({})).config.device_dispense_ttl_days).toBe(3);
    auth = `Bearer ${await t.token()}`;
  }, SETUP_TIMEOUT_MS);
  afterAll(async () => t?.close());

  const base = `/api/patients/${ids.patient}/device_dispenses`;
  const get = (id: string) => request(t.app).get(`${base}/${id}`).set('authorization', auth);
  const streamTypes = async (id: string) => (await readWholeStream(t.server.context.eventStore, `device_dispense-${id}`)).map((e) => e.type);

  async function create(requestId: string): Promise<string> {
    const id = newId();
    const accepted = await request(t.app)
      .post(base)
      .set('authorization', auth)
      .send(createBody(id, { based_on: ref('device_request', requestId) }));
    expect(accepted.status).toBe(202);
    expect((await t.waitForJob(accepted.body.data.links[0].href)).status).toBe(303);
    return id;
  }

  it('expires what is still in_progress after the TTL, leaves a stopped one alone, and a second sweep appends nothing', async () => {
    const inProgress = await create(toExpire);
    const stopped = await create(toStop);
    const stop = await request(t.app).patch(`${base}/${stopped}/actions/stop`).set('authorization', auth);
    expect((await t.waitForJob(stop.body.data.links[0].href)).status).toBe(303);

    // Before the TTL has passed, a sweep changes nothing.
    t.advanceClock(2 * DAY_MS);
    await t.server.runExpirationSweep();
    expect(await streamTypes(inProgress)).toEqual(['DeviceDispenseCreated']);

    // A dispense inserted now is not yet due when the first two are.
    const fresh = await create(createdLater);

    t.advanceClock(2 * DAY_MS); // 4 days after the first two were inserted, 2 after `fresh`
    await t.server.runExpirationSweep();

    await eventually(async () => (await get(inProgress)).body.data?.status === 'unknown', 10_000, 'the expired dispense in the read model');
    const expired = (await get(inProgress)).body.data;
    expect(expired).toMatchObject({ status: 'unknown', updated_by: SYSTEM_USER_ID, inserted_by: ids.user });
    expect(Date.parse(expired.updated_at)).toBeGreaterThan(Date.parse(expired.inserted_at) + 3 * DAY_MS);
    expect((await get(stopped)).body.data).toMatchObject({ status: 'stopped', updated_by: ids.user });
    expect((await get(fresh)).body.data.status).toBe('in_progress');

    const before = {
      inProgress: await streamTypes(inProgress),
      stopped: await streamTypes(stopped),
      fresh: await streamTypes(fresh),
    };
    expect(before).toEqual({
      inProgress: ['DeviceDispenseCreated', 'DeviceDispenseExpired'],
      stopped: ['DeviceDispenseCreated', 'DeviceDispenseStopped'],
      fresh: ['DeviceDispenseCreated'],
    });

    await t.server.runExpirationSweep();
    expect({ inProgress: await streamTypes(inProgress), stopped: await streamTypes(stopped), fresh: await streamTypes(fresh) }).toEqual(before);
  });

  it('an expired dispense is found by status=unknown and can no longer be stopped, but can be marked in error', async () => {
    const unknown = await request(t.app).get(`/api/device_dispenses?status=unknown`).set('authorization', auth);
    expect(unknown.body.data).toHaveLength(1);
    const id = unknown.body.data[0].id as string;

    const stop = await request(t.app).patch(`${base}/${id}/actions/stop`).set('authorization', auth);
    const job = await t.waitForJob(stop.body.data.links[0].href);
    expect(job.status).toBe(409);
    expect(job.body.data.error.message).toBe('Device dispense in status unknown cannot be stopped');

    const current = (await get(id)).body.data;
    const signed = await t.sign({
      ...current,
      status: 'entered_in_error',
      status_reason: { coding: [{ system: 'device_dispense_mark_in_error_reasons', code: 'incorrect_patient' }] },
    });
    const mark = await request(t.app).patch(`${base}/${id}/actions/mark_in_error`).set('authorization', auth).send({ signed_data: signed });
    expect((await t.waitForJob(mark.body.data.links[0].href)).status).toBe(303);
    expect((await get(id)).body.data.status).toBe('entered_in_error');
  });

  it('a dispense that becomes due later is expired by a later sweep, once (sweeps right after it see a stale read model)', async () => {
    // `fresh` (in_progress) becomes due; the sweeps right after the first may still find it in_progress in the read model.
    t.advanceClock(2 * DAY_MS);
    await t.server.runExpirationSweep();
    await t.server.runExpirationSweep();
    const due = await request(t.app).get(`/api/device_dispenses?based_on=${createdLater}`).set('authorization', auth);
    const id = due.body.data[0].id as string;
    await eventually(async () => (await get(id)).body.data?.status === 'unknown', 10_000, 'the second expired dispense');
    await t.server.runExpirationSweep();
    expect(await streamTypes(id)).toEqual(['DeviceDispenseCreated', 'DeviceDispenseExpired']);
  });
});
