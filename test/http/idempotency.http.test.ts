/**
 * X-Idempotency-Key: a repeat of a POST/PATCH by the same caller with the same body gets the first
 * answer again (no new job, no new event); the same key for another request is a 422; keys expire
 * after IDEMPOTENCY_KEY_TTL_SECONDS; two racing requests with one key do not both run.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { createBody, ids } from '../support/fixtures.js';
import { expectEsozError, expectNoSideEffects, sideEffects } from '../support/sideEffects.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import { basedOn, deviceRequestPool, dispensesPath, expectJobUnprocessable, expectProcessed } from '../deviceDispenses/helpers.js';
import { createLicenseBody, licenseIds, licenseReferenceData } from '../licenses/helpers.js';

const TTL_SECONDS = 600;
const KEY = 'X-Idempotency-Key';

describe.each(testBackends())('X-Idempotency-Key on %s', (backend) => {
  let t: TestServer;
  let nextRequest: () => string;
  beforeAll(async () => {
    const data = licenseReferenceData();
    nextRequest = deviceRequestPool(data, 4);
    t = await startTestServer({ backend, data, env: { IDEMPOTENCY_KEY_TTL_SECONDS: String(TTL_SECONDS) } });
  });
  afterAll(async () => t.close());

  const bearer = async (claims: Parameters<TestServer['token']>[0] = {}) => `Bearer ${await t.token(claims)}`;
  const postCreate = async (body: object, key?: string) => {
    const req = request(t.app)
      .post(dispensesPath())
      .set('authorization', await bearer());
    return (key ? req.set(KEY, key) : req).send(body);
  };
  const postLicense = async (body: object, key: string | undefined, claims: Parameters<TestServer['token']>[0] = {}) => {
    const req = request(t.app)
      .post('/api/licenses')
      .set('authorization', await bearer(claims));
    return (key ? req.set(KEY, key) : req).send(body);
  };
  const differentRequest = {
    type: 'validation_failed',
    message: `${KEY} was already used for a different request (another body or path); use a new key`,
    invalid: [{ entry: KEY, entry_type: 'header', rules: [{ rule: 'format', description: 'was already used for a different request', params: [] }] }],
  };

  describe('async create (202 + job)', () => {
    it('a retry after a lost answer gets the same 202 and job, and runs nothing again', async () => {
      const body = createBody(newId(), basedOn(nextRequest()));
      const first = await postCreate(body, 'create-retry-1');
      expect(first.status).toBe(202);
      expect(first.body.meta.idempotency_key).toBe('create-retry-1');
      expectProcessed(await t.waitForJob(first.body.data.links[0].href), body.id);

      const before = await sideEffects(t);
      const retry = await postCreate(body, 'create-retry-1');
      expect(retry.status).toBe(202);
      expect(retry.text).toBe(first.text);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      await new Promise((resolve) => setTimeout(resolve, 200)); // a job, had one been queued, would run now
      expect(await sideEffects(t)).toEqual(before);
    });

    it('without the header the seed rules apply unchanged: the repeat runs and its job fails', async () => {
      const body = createBody(newId(), basedOn(nextRequest()));
      const first = await postCreate(body);
      expect(first.body.meta.idempotency_key).toBeUndefined();
      expectProcessed(await t.waitForJob(first.body.data.links[0].href), body.id);
      const again = await postCreate(body);
      expect(again.status).toBe(202);
      expect(again.body.data.links[0].href).not.toBe(first.body.data.links[0].href);
      expectJobUnprocessable(await t.waitForJob(again.body.data.links[0].href), 'Other active device dispense already exist.', '$.based_on.identifier.value');
    });

    it('the same key with another body, or on another path, is refused with 422', async () => {
      const body = createBody(newId(), basedOn(nextRequest()));
      const first = await postCreate(body, 'create-once');
      expectProcessed(await t.waitForJob(first.body.data.links[0].href), body.id);
      const otherBody = await expectNoSideEffects(t, () => postCreate({ ...body, note: 'another note' }, 'create-once'));
      expectEsozError(otherBody, 422, differentRequest);
      const otherPath = await expectNoSideEffects(t, async () =>
        request(t.app)
          .post(dispensesPath(ids.otherPatient))
          .set('authorization', await bearer())
          .set(KEY, 'create-once')
          .send(body),
      );
      expectEsozError(otherPath, 422, differentRequest);
    });

    it('covers PATCH actions too (stop has no body)', async () => {
      const body = createBody(newId(), basedOn(nextRequest()));
      expectProcessed(await t.waitForJob((await postCreate(body)).body.data.links[0].href), body.id);
      const stop = async () =>
        request(t.app)
          .patch(`${dispensesPath()}/${body.id}/actions/stop`)
          .set('authorization', await bearer())
          .set(KEY, 'stop-1');
      const first = await stop();
      expect(first.status).toBe(202);
      expectProcessed(await t.waitForJob(first.body.data.links[0].href), body.id);
      const before = await sideEffects(t);
      const retry = await stop();
      expect(retry.text).toBe(first.text);
      expect(await sideEffects(t)).toEqual(before);
    });
  });

  describe('sync licence methods', () => {
    it('POST: the repeat answers the same 201 and body without appending; without the key it is the seed 409', async () => {
      const body = createLicenseBody({ license_number: 'IDEM-1' });
      const first = await postLicense(body, 'licence-create-1');
      expect(first.status).toBe(201);
      const retry = await expectNoSideEffects(t, () => postLicense(body, 'licence-create-1'));
      expect(retry.status).toBe(201);
      expect(retry.text).toBe(first.text);
      const withoutKey = await postLicense(body, undefined);
      expectEsozError(withoutKey, 409, { type: 'request_conflict', message: 'License with type PHARMACY is already present' });
    });

    it('PATCH: replays the answer; another body under the key is 422', async () => {
      const licences = await request(t.app)
        .get('/api/licenses?is_primary=false&type=PHARMACY')
        .set('authorization', await bearer());
      const id = String(licences.body.data[0].id);
      const patch = async (body: object) =>
        request(t.app)
          .patch(`/api/licenses/${id}`)
          .set('authorization', await bearer())
          .set(KEY, 'licence-patch-1')
          .send(body);
      const first = await patch({ is_primary: false, order_no: 'P-1' });
      expect(first.status).toBe(200);
      const retry = await expectNoSideEffects(t, () => patch({ is_primary: false, order_no: 'P-1' }));
      expect(retry.text).toBe(first.text);
      expectEsozError(await patch({ is_primary: false, order_no: 'P-2' }), 422, differentRequest);
    });

    it('an error answer is replayed too (same status and body)', async () => {
      const first = await postLicense({ ...createLicenseBody(), type: 'NOPE' }, 'licence-invalid-1');
      expect(first.status).toBe(422);
      const retry = await postLicense({ ...createLicenseBody(), type: 'NOPE' }, 'licence-invalid-1');
      expect(retry.status).toBe(422);
      expect(retry.text).toBe(first.text);
    });

    it('a key belongs to its caller: another user of the legal entity using it runs their own request', async () => {
      const body = createLicenseBody({ license_number: 'IDEM-OTHER-USER' });
      const mine = await postLicense(body, 'shared-key');
      expect((await postLicense(body, 'shared-key')).headers['idempotent-replayed']).toBe('true');
      const theirs = await postLicense(body, 'shared-key', { sub: ids.otherUser });
      expect(theirs.headers['idempotent-replayed']).toBeUndefined();
      expect(theirs.body.meta.request_id).not.toBe(mine.body.meta.request_id);
    });

    it('of five concurrent creates with one key exactly one runs; the others replay it or are told it is in progress', async () => {
      const client = { client_id: licenseIds.racePharmacy };
      const body = createLicenseBody({ license_number: 'RACE-IDEM' });
      const before = await sideEffects(t);
      const results = await Promise.all(Array.from({ length: 5 }, () => postLicense(body, 'race-key', client)));
      const created = results.filter((r) => r.status === 201);
      expect(created.length).toBeGreaterThanOrEqual(1);
      expect(new Set(created.map((r) => r.body.data.id)).size).toBe(1);
      for (const other of results.filter((r) => r.status !== 201))
        expectEsozError(other, 409, { type: 'request_conflict', message: `A request with this ${KEY} is still being processed` });
      expect((await sideEffects(t)).events).toBe(before.events + 1);
      const list = await request(t.app)
        .get('/api/licenses?is_primary=false&type=PHARMACY')
        .set('authorization', await bearer(client));
      expect(list.body.data).toHaveLength(1);
    });
  });

  describe('the key itself', () => {
    it.each([
      ['longer than 255 characters', 'k'.repeat(256)],
      ['with a tab', 'a\tb'],
      ['with a non-ASCII character', 'caf\u00e9'],
    ])('a key %s is a 422 naming the header', async (_name, key) => {
      const res = await expectNoSideEffects(t, () => postLicense(createLicenseBody({ license_number: 'BAD-KEY' }), key));
      expectEsozError(res, 422, {
        type: 'validation_failed',
        invalid: [{ entry: KEY, entry_type: 'header', rules: [{ rule: 'format', description: 'must be 1 to 255 printable ASCII characters', params: [] }] }],
      });
    });

    it('255 printable ASCII characters are a good key', async () => {
      // Every printable ASCII character; the space inside (HTTP trims it at the ends).
      const printable = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i)).join('');
      const key = `${printable} ${'a'.repeat(255 - printable.length - 1)}`;
      expect(key).toHaveLength(255);
      const res = await request(t.app)
        .get('/api/licenses')
        .set('authorization', await bearer())
        .set(KEY, key);
      expect(res.status).toBe(200);
      expect(res.body.meta.idempotency_key).toBe(key);
    });
  });

  // Last: it moves the server's clock past the TTL.
  it('an expired key is ignored (the request runs again) and expired keys are purged', async () => {
    const body = createLicenseBody({ license_number: 'IDEM-TTL' });
    const first = await postLicense({ ...body, type: 'NOPE' }, 'ttl-key');
    expect(first.status).toBe(422);
    expect((await sideEffects(t)).idempotencyKeys).toBeGreaterThan(1);
    t.advanceClock((TTL_SECONDS + 1) * 1000);
    // Another body under the same key: refused before expiry, a fresh request now.
    const after = await postLicense({ ...body, type: 'ALSO-NOPE' }, 'ttl-key');
    expect(after.status).toBe(422);
    expect(after.headers['idempotent-replayed']).toBeUndefined();
    expect(after.body.error.invalid[0].entry).toBe('$.type');
    // The purge runs alongside: only the key just used is left.
    const deadline = Date.now() + 5000;
    while ((await sideEffects(t)).idempotencyKeys !== 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    expect((await sideEffects(t)).idempotencyKeys).toBe(1);
  });
});
