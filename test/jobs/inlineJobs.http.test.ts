/**
 * Jobs run within the request that accepts them (PostgreSQL/PGlite): the 202 still says "pending"
 * (the contract), but the job, its events and the device_dispenses row have committed together by
 * then. Racing requests still leave one winner; a failure inside that transaction leaves nothing
 * half-written and the job goes to the queue, which finishes it once the failure is gone. The job GET
 * honours `Prefer: wait=N` (RFC 7240, bounded) and says `Retry-After` while pending.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { readWholeStream } from '../../src/eventStore/eventStore.js';
import { MAX_JOB_WAIT_SECONDS, preferredWait } from '../../src/http/jobs.js';
import { createBody, ids, ref, referenceData } from '../support/fixtures.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import { deviceRequestPool } from '../deviceDispenses/helpers.js';
import { eventually } from '../support/events.js';

const SETUP_TIMEOUT_MS = 120_000;

describe('Prefer: wait (RFC 7240)', () => {
  it('reads wait=N among other preferences, bounded; anything else is no wait', () => {
    expect(preferredWait(undefined)).toBe(0);
    expect(preferredWait('wait=5')).toBe(5);
    expect(preferredWait('respond-async, wait=7')).toBe(7);
    expect(preferredWait('WAIT = "3"')).toBe(3);
    expect(preferredWait('wait=99999')).toBe(MAX_JOB_WAIT_SECONDS);
    expect(preferredWait('wait=-1')).toBe(0);
    expect(preferredWait('wait=soon')).toBe(0);
    expect(preferredWait('handling=lenient')).toBe(0);
  });
});

describe.each(testBackends())('jobs within their request on %s', (backend) => {
  const data = referenceData();
  const freshRequest = deviceRequestPool(data, 12);
  let t: TestServer;
  let auth: string;
  let otherAuth: string;
  beforeAll(async () => {
    t = await startTestServer({ backend, data });
    auth = `Bearer ${await t.token()}`;
    otherAuth = `Bearer ${await t.token({ sub: ids.otherUser })}`;
  }, SETUP_TIMEOUT_MS);
  afterAll(async () => t?.close());

  const base = `/api/patients/${ids.patient}/device_dispenses`;
  const hrefOf = (res: request.Response): string => {
    expect(res.status).toBe(202);
    expect(res.body.data.status).toBe('pending');
    return res.body.data.links[0].href as string;
  };
  const jobIdOf = (href: string) => href.split('/').pop()!;
  const jobRow = async (href: string) =>
    (
      await t.server.context.database.pool.query<{ status: string; status_code: number | null }>('select status, status_code from jobs where id = $1', [
        jobIdOf(href),
      ])
    ).rows[0];
  const postCreate = (id: string) =>
    request(t.app)
      .post(base)
      .set('authorization', auth)
      .send(createBody(id, { based_on: ref('device_request', freshRequest()) }));
  const patchStop = (id: string, bearer = auth) => request(t.app).patch(`${base}/${id}/actions/stop`).set('authorization', bearer);
  const streamTypes = async (id: string) => (await readWholeStream(t.server.context.eventStore, `device_dispense-${id}`)).map((e) => e.type);

  it('the 202 says pending, and by then the job, the events and the read model have committed', async () => {
    const id = newId();
    const created = hrefOf(await postCreate(id));
    expect(await jobRow(created)).toEqual({ status: 'processed', status_code: 200 });
    expect((await t.server.context.deviceDispenses.get(id))?.document).toMatchObject({ status: 'in_progress' });

    const stopped = hrefOf(await patchStop(id));
    expect(await jobRow(stopped)).toEqual({ status: 'processed', status_code: 200 });
    expect((await t.server.context.deviceDispenses.get(id))?.document).toMatchObject({ status: 'stopped' });
    expect(await streamTypes(id)).toEqual(['DeviceDispenseCreated', 'DeviceDispenseStopped']);
    const job = await request(t.app).get(stopped).set('authorization', auth);
    expect(job.status).toBe(303);
    expect(job.body.data.links).toEqual([{ entity: 'device_dispense', href: `${base}/${id}` }]);

    // A failed job is recorded within its request too, with the error the seed gives.
    const again = hrefOf(await patchStop(id));
    expect(await jobRow(again)).toEqual({ status: 'failed', status_code: 409 });
    const failed = await request(t.app).get(again).set('authorization', auth);
    expect(failed.status).toBe(409);
    expect(failed.body.data.error.message).toBe('Device dispense in status stopped cannot be stopped');
  });

  it('racing stops of one dispense, each within its request: one stops it, the others fail 409; one Stopped event', async () => {
    const id = newId();
    hrefOf(await postCreate(id));
    const hrefs = (await Promise.all([auth, otherAuth, auth, otherAuth].map((bearer) => patchStop(id, bearer)))).map(hrefOf);
    const answers = await Promise.all(hrefs.map((href) => request(t.app).get(href).set('authorization', auth)));
    expect(answers.map((a) => a.status).sort()).toEqual([303, 409, 409, 409]);
    expect(await streamTypes(id)).toEqual(['DeviceDispenseCreated', 'DeviceDispenseStopped']);
  });

  it('a failure inside the transaction leaves nothing half-written; the queue finishes the job once it is gone', async () => {
    const id = newId();
    hrefOf(await postCreate(id));
    const { pool } = t.server.context.database;
    // A real failure of the read-model write, inside the append's transaction (not a mock).
    await pool.query(`create or replace function refuse_row() returns trigger language plpgsql as $$
      begin if new.id = '${id}' and new.status = 'stopped' then raise exception 'refused for the test'; end if; return new; end $$`);
    await pool.query('create trigger refuse_row before update on device_dispenses for each row execute function refuse_row()');
    let href: string;
    try {
      href = hrefOf(await patchStop(id));
      expect((await jobRow(href))?.status).toBe('pending');
      expect(await streamTypes(id)).toEqual(['DeviceDispenseCreated']);
      expect((await t.server.context.deviceDispenses.get(id))?.document).toMatchObject({ status: 'in_progress' });
      const pending = await request(t.app).get(href).set('authorization', auth);
      expect(pending.status).toBe(200);
      expect(pending.headers['retry-after']).toBe('1');
    } finally {
      await pool.query('drop trigger refuse_row on device_dispenses');
    }
    // The worker retries it (back-off 2 s after the first failure); a long poll answers when it ends.
    const ended = await request(t.app).get(href).set('authorization', auth).set('prefer', 'wait=20');
    expect(ended.status).toBe(303);
    await eventually(async () => (await streamTypes(id)).length === 2, 10_000, 'one Stopped event');
    expect(await streamTypes(id)).toEqual(['DeviceDispenseCreated', 'DeviceDispenseStopped']);
  });

  it('Prefer: wait answers a queued job the moment it ends; without it a pending job says Retry-After', async () => {
    const id = newId();
    hrefOf(await postCreate(id));
    await t.server.worker.stop(); // a stopped worker queues jobs instead of running them in the request
    let href: string;
    try {
      href = hrefOf(await patchStop(id));
      const pending = await request(t.app).get(href).set('authorization', auth);
      expect(pending.status).toBe(200);
      expect(pending.body.data.status).toBe('pending');
      expect(pending.headers['retry-after']).toBe('1');
      // Bounded: a short wait on a job nobody runs answers pending.
      const still = await request(t.app).get(href).set('authorization', auth).set('prefer', 'wait=1');
      expect(still.status).toBe(200);
    } finally {
      t.server.worker.start();
    }
    const ended = await request(t.app).get(href).set('authorization', auth).set('prefer', 'wait=20');
    expect(ended.status).toBe(303);
    expect(ended.headers['retry-after']).toBeUndefined();
  });

  it('another legal entity waiting on a job gets 404 at once, not a wait', async () => {
    const id = newId();
    const href = hrefOf(await postCreate(id));
    // Another legal entity's (the pharmacist works there too: an employee, so the job lookup decides).
    const stranger = `Bearer ${await t.token({ client_id: ids.otherLegalEntity })}`;
    const answer = await request(t.app).get(href).set('authorization', stranger).set('prefer', 'wait=30');
    expect(answer.status).toBe(404);
  });

  it('plain job GETs, dispense GETs and Stops (answered in front of Express) get what Express answers: status, headers, envelope', async () => {
    const id = newId();
    const created = hrefOf(await postCreate(id));
    const failed = hrefOf(await postCreate(id)); // the same id again: a failed job
    // An X-Idempotency-Key sends a GET through Express (a GET ignores it, but meta echoes it).
    const viaExpress = (href: string) => request(t.app).get(href).set('authorization', auth).set('x-idempotency-key', 'k');
    const plain = (href: string) => request(t.app).get(href).set('authorization', auth);
    const shape = (res: request.Response) => {
      const { date, 'x-request-id': requestId, 'content-length': _length, ...headers } = res.headers;
      expect(date).toBeDefined();
      expect(requestId).toBe(res.body.meta.request_id);
      const { idempotency_key: _key, request_id: _id, ...meta } = res.body.meta as Record<string, unknown>;
      return { status: res.status, headers, body: { ...res.body, meta } };
    };
    await t.server.worker.stop(); // a stopped worker queues jobs: one stays pending meanwhile
    try {
      const pending = hrefOf(await patchStop(id));
      for (const href of [created, failed, pending, `/api/jobs/${newId()}`, '/api/jobs/0000-abc'])
        expect(shape(await plain(href))).toEqual(shape(await viaExpress(href)));
    } finally {
      t.server.worker.start();
    }
    // A given request id is kept; another legal entity finds nothing; a bad token is refused as always.
    const withId = await plain(created).set('x-request-id', 'mis-42');
    expect([withId.headers['x-request-id'], withId.body.meta.request_id]).toEqual(['mis-42', 'mis-42']);
    // Another legal entity's (the pharmacist works there too: an employee, so the job lookup decides).
    const stranger = `Bearer ${await t.token({ client_id: ids.otherLegalEntity })}`;
    expect((await request(t.app).get(created).set('authorization', stranger)).status).toBe(404);
    expect((await request(t.app).get(created).set('authorization', 'Bearer nope')).status).toBe(401);
    // A plain GET of a dispense: found, unknown, on another patient's path, not an id, another legal entity's token.
    for (const path of [`${base}/${id}`, `${base}/${newId()}`, `/api/patients/${newId()}/device_dispenses/${id}`, `${base}/not-a-uuid`])
      expect(shape(await plain(path))).toEqual(shape(await viaExpress(path)));
    const dismissed = `Bearer ${await t.token({ sub: ids.dismissedUser })}`;
    for (const bearer of [stranger, dismissed]) {
      const as = () => request(t.app).get(`${base}/${id}`).set('authorization', bearer);
      expect(shape(await as())).toEqual(shape(await as().set('x-idempotency-key', 'k')));
    }
    expect((await request(t.app).get(`${base}/${id}`).set('authorization', dismissed)).body.error.message).toBe(
      'User is not an active employee of the legal entity',
    );
    // A plain Stop too: its 202 as Express gives it (another job, the same shape), its job processed.
    const other = newId();
    hrefOf(await postCreate(other));
    const stops = [await patchStop(other), await patchStop(newId()).set('x-idempotency-key', newId())];
    const withoutJob = (res: request.Response) => {
      const { body, ...rest } = shape(res);
      const meta = { ...body.meta, url: String(body.meta.url).replace(/device_dispenses\/[^/]+/, 'device_dispenses/:id') };
      return { ...rest, body: { ...body, meta, data: { ...body.data, eta: 'eta', links: 'links' } } };
    };
    expect(withoutJob(stops[0]!)).toEqual(withoutJob(stops[1]!));
    expect((await plain(hrefOf(stops[0]!))).status).toBe(303);
    // A plain Create, and its refusals before the job: the same answers as through Express.
    const post = (text: string, key?: string) => {
      const sent = request(t.app).post(base).set('authorization', auth).set('content-type', 'application/json');
      return (key ? sent.set('x-idempotency-key', key) : sent).send(text);
    };
    const fresh = JSON.stringify(createBody(newId(), { based_on: ref('device_request', freshRequest()) }));
    const created2 = [await post(fresh), await post(JSON.stringify(createBody(newId(), { based_on: ref('device_request', freshRequest()) })), newId())];
    expect(withoutJob(created2[0]!)).toMatchObject({ status: 202, headers: withoutJob(created2[1]!).headers });
    expect((await plain(hrefOf(created2[0]!))).status).toBe(303);
    for (const text of ['{"id":', '[1,', '{}', '"text"', 'null', '\ufeff{}', JSON.stringify({ a: '\u0000' }), '['.repeat(40) + ']'.repeat(40)])
      expect(shape(await post(text))).toEqual(shape(await post(text, newId())));
    // HEAD and other methods, a query string: Express, as before.
    expect((await request(t.app).head(created).set('authorization', auth)).status).toBe(303);
    expect(shape(await request(t.app).get(`${created}?a=1`).set('authorization', auth)).body.data).toEqual(shape(await plain(created)).body.data);
  });
});
