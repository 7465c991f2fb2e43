/**
 * Drives the API the way a careful MIS does while the registry may be briefly unavailable: a 503 is
 * retried after a pause (it changed nothing), a pending job is polled; anything else is the answer.
 */
import { expect } from '@jest/globals';
import request from 'supertest';
import { basedOn, dispensesPath } from '../deviceDispenses/helpers.js';
import { createBody } from './fixtures.js';
import type { TestServer } from './testServer.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function retrying(send: () => Promise<request.Response>, timeoutMs = 60_000): Promise<request.Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await send();
    if (res.status !== 503) return res;
    // Unavailable is ЕСОЗ error JSON too, never a bare 500 or a hang.
    expect(res.body.error).toEqual({ type: 'service_unavailable', message: 'Service is temporarily unavailable. Please retry later.' });
    if (Date.now() > deadline) throw new Error('still unavailable');
    await sleep(100);
  }
}

/** Polls a job until it ends (503s retried); returns the final answer. */
export async function jobOutcome(t: TestServer, href: string, auth: string, timeoutMs = 60_000): Promise<request.Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await retrying(() => request(t.app).get(href).set('authorization', auth));
    if (!(res.status === 200 && res.body.data?.status === 'pending')) return res;
    if (Date.now() > deadline) throw new Error(`job ${href} still pending`);
    await sleep(50);
  }
}

/** Create a dispense, then stop it, each to its processed job (303); returns the dispense id. */
export async function createThenStop(t: TestServer, auth: string, dispenseId: string, deviceRequestId: string): Promise<void> {
  const created = await retrying(() =>
    request(t.app)
      .post(dispensesPath())
      .set('authorization', auth)
      .send(createBody(dispenseId, basedOn(deviceRequestId))),
  );
  expect(created.status).toBe(202);
  const createdJob = await jobOutcome(t, created.body.data.links[0].href, auth);
  expect([createdJob.status, createdJob.status === 303 ? null : createdJob.body]).toEqual([303, null]);
  const stopped = await retrying(() => request(t.app).patch(`${dispensesPath()}/${dispenseId}/actions/stop`).set('authorization', auth));
  expect(stopped.status).toBe(202);
  expect((await jobOutcome(t, stopped.body.data.links[0].href, auth)).status).toBe(303);
}
