/**
 * Consistency under concurrency, through the HTTP API: racing writers on one dispense or one device
 * request leave exactly one winner (the loser's job gets the answer the new state gives), a request
 * sent again while its job is pending gets that job, and a GET right after a processed job shows it.
 *
 * "At the same moment": the worker is stopped while both requests are accepted, then started, so its
 * two loops (JOB_CONCURRENCY default 2) claim one job each and run them side by side.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { readWholeStream } from '../../src/eventStore/eventStore.js';
import type { ReferenceDataFile } from '../../src/referenceData/referenceData.js';
import { createBody, ids, ref, referenceData } from '../support/fixtures.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';

/** Starting a server (and this file's fixtures) can take a while on a loaded machine. */
const SETUP_TIMEOUT_MS = 120_000;

const ROUNDS = 5;

function dataWith(requestIds: string[]): ReferenceDataFile {
  const data = referenceData();
  const template = data.device_requests.find((r) => r.id === ids.deviceRequest)!;
  data.device_requests.push(...requestIds.map((id) => ({ ...template, id })));
  return data;
}
const basedOn = (requestId: string) => ({ based_on: ref('device_request', requestId) });

describe.each(testBackends())('consistency under concurrency on %s', (backend) => {
  const requestIds = Array.from({ length: 4 * ROUNDS + 4 }, newId);
  let nextRequest = 0;
  const freshRequest = () => requestIds[nextRequest++]!;

  let t: TestServer;
  let auth: string;
  /** A second pharmacist of the same legal entity (the job of a request is per user). */
  let otherAuth: string;
  beforeAll(async () => {
    t = await startTestServer({ backend, data: dataWith(requestIds) });
    expect(t.server.context.config.JOB_CONCURRENCY).toBe(2);
    auth = `Bearer ${await t.token()}`;
    otherAuth = `Bearer ${await t.token({ sub: ids.otherUser })}`;
  }, SETUP_TIMEOUT_MS);
  afterAll(async () => t?.close());

  const base = `/api/patients/${ids.patient}/device_dispenses`;
  const get = (id: string) => request(t.app).get(`${base}/${id}`).set('authorization', auth);
  const postCreate = (body: object, bearer = auth, requestId = newId()) =>
    request(t.app).post(base).set('authorization', bearer).set('x-request-id', requestId).send(body);
  const patchStop = (id: string, bearer = auth, requestId = newId()) =>
    request(t.app).patch(`${base}/${id}/actions/stop`).set('authorization', bearer).set('x-request-id', requestId);
  const hrefOf = (res: request.Response): string => {
    expect(res.status).toBe(202);
    return res.body.data.links[0].href as string;
  };
  const streamOf = (id: string) => readWholeStream(t.server.context.eventStore, `device_dispense-${id}`);

  async function create(requestId: string): Promise<string> {
    const id = newId();
    const job = await t.waitForJob(hrefOf(await postCreate(createBody(id, basedOn(requestId)))));
    expect(job.status).toBe(303);
    return id;
  }

  /** Accepts every request with the worker stopped, then lets the worker run them side by side. */
  async function atTheSameMoment(send: Array<() => Promise<request.Response>>): Promise<string[]> {
    await t.server.worker.stop();
    try {
      return (await Promise.all(send.map((s) => s()))).map(hrefOf);
    } finally {
      t.server.worker.start();
    }
  }

  // Two pharmacists: the same stop by the same user, even with another X-Request-ID, is the same request and
  // gets the same pending job (spec §0.3, see (c)); two users' stops are two jobs that really race.
  it('(a) two stops of one dispense at the same moment: one stops it, the other fails 409; one Stopped event', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const id = await create(freshRequest());
      const hrefs = await atTheSameMoment([() => patchStop(id, auth), () => patchStop(id, otherAuth)]);
      expect(new Set(hrefs).size).toBe(2);

      // Jobs are the legal entity's: either pharmacist's token reads both.
      const jobs = await Promise.all(hrefs.map((href) => t.waitForJob(href)));
      const processed = jobs.filter((job) => job.body.data.status === 'processed');
      const failed = jobs.filter((job) => job.body.data.status === 'failed');
      expect(processed).toHaveLength(1);
      expect(failed).toHaveLength(1);
      expect(failed[0]!.status).toBe(409);
      expect(failed[0]!.body.data.error).toEqual({ type: 'request_conflict', message: 'Device dispense in status stopped cannot be stopped' });

      const events = await streamOf(id);
      expect(events.filter((e) => e.type === 'DeviceDispenseStopped')).toHaveLength(1);
      expect(events.map((e) => e.type)).toEqual(['DeviceDispenseCreated', 'DeviceDispenseStopped']);
      expect((await get(id)).body.data.status).toBe('stopped');
    }
  });

  // Spec §1.3.1 check 8 ("No other IN_PROGRESS dispense on same device request") must hold under concurrency.
  // As of this writing this fails on PostgreSQL (both creates processed): createDeviceDispense makes the check on
  // one read of the device request's dispensing stream but appends its attach with the revision of a second read,
  // and treats a dispense attached but not yet created as absent. Not a test to relax.
  it('(b) two creates on one device request at the same moment: one is created, the other fails 422', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const deviceRequest = freshRequest();
      const dispenseIds = [newId(), newId()];
      const hrefs = await atTheSameMoment(dispenseIds.map((id) => () => postCreate(createBody(id, basedOn(deviceRequest)))));
      expect(new Set(hrefs).size).toBe(2);

      const jobs = await Promise.all(hrefs.map((href) => t.waitForJob(href)));
      const outcome = jobs.map((job) => `${job.body.data.status} ${job.status}`).sort();
      expect(outcome).toEqual(['failed 422', 'processed 303']);
      const failed = jobs.find((job) => job.body.data.status === 'failed')!;
      expect(failed.body.data.error.message).toBe('Other active device dispense already exist.');

      const details = await Promise.all(dispenseIds.map(get));
      expect(details.map((d) => d.status).sort()).toEqual([200, 404]);
      expect(details.find((d) => d.status === 200)!.body.data.status).toBe('in_progress');

      const onRequest = await request(t.app).get(`/api/device_dispenses?based_on=${deviceRequest}`).set('authorization', auth);
      expect(onRequest.body.data.map((d: { id: string }) => d.id)).toEqual(details.filter((d) => d.status === 200).map((d) => d.body.data.id));
      expect(onRequest.body.data.filter((d: { status: string }) => d.status === 'in_progress')).toHaveLength(1);
    }
  });

  it('(c) the same request sent again while its job is pending gets the same job; once it is done, a new one', async () => {
    const id = await create(freshRequest());
    const newDispense = newId();
    const createOnFresh = createBody(newDispense, basedOn(freshRequest()));

    await t.server.worker.stop();
    let stopHrefs: string[];
    let createHrefs: string[];
    try {
      // Different request ids (X-Request-ID), the same request: the same pending job.
      stopHrefs = [hrefOf(await patchStop(id)), hrefOf(await patchStop(id))];
      createHrefs = [hrefOf(await postCreate(createOnFresh)), hrefOf(await postCreate(createOnFresh))];
      expect(stopHrefs[1]).toBe(stopHrefs[0]);
      expect(createHrefs[1]).toBe(createHrefs[0]);
      // Another request (another dispense) is another job.
      expect(createHrefs[0]).not.toBe(stopHrefs[0]);
      expect((await request(t.app).get(stopHrefs[0]!).set('authorization', auth)).body.data.status).toBe('pending');
    } finally {
      t.server.worker.start();
    }

    expect((await t.waitForJob(stopHrefs[0]!)).status).toBe(303);
    expect((await t.waitForJob(createHrefs[0]!)).status).toBe(303);
    expect((await get(id)).body.data.status).toBe('stopped');
    expect((await get(newDispense)).body.data.status).toBe('in_progress');
    expect((await streamOf(id)).map((e) => e.type)).toEqual(['DeviceDispenseCreated', 'DeviceDispenseStopped']);
    expect((await streamOf(newDispense)).map((e) => e.type)).toEqual(['DeviceDispenseCreated']);

    // Performed: the same request again is a new job, answered by the new state.
    const again = hrefOf(await patchStop(id));
    expect(again).not.toBe(stopHrefs[0]);
    const job = await t.waitForJob(again);
    expect(job.status).toBe(409);
    expect(job.body.data.error.message).toBe('Device dispense in status stopped cannot be stopped');
  });

  it('(d) a GET right after a processed job shows the new state', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const id = newId();
      const created = await t.waitForJob(hrefOf(await postCreate(createBody(id, basedOn(freshRequest())))));
      expect(created.status).toBe(303);
      const afterCreate = await get(id);
      expect(afterCreate.status).toBe(200);
      expect(afterCreate.body.data.status).toBe('in_progress');
      const listed = await request(t.app).get(`${base}?status=in_progress`).set('authorization', auth);
      expect(listed.body.data.map((d: { id: string }) => d.id)).toContain(id);

      const stopped = await t.waitForJob(hrefOf(await patchStop(id)));
      expect(stopped.status).toBe(303);
      const afterStop = await get(id);
      expect(afterStop.body.data).toMatchObject({ status: 'stopped', updated_by: ids.user });
      const listedStopped = await request(t.app)
        .get(`/api/device_dispenses?status=stopped&based_on=${afterStop.body.data.based_on.identifier.value}`)
        .set('authorization', auth);
      expect(listedStopped.body.data.map((d: { id: string }) => d.id)).toEqual([id]);
    }
  });
});
