/**
 * Update License (seed 003) over HTTP: its six checks in the seed's order with codes and messages
 * verbatim; an unchanged request appends nothing and returns the licence as it is; a change sets
 * updated_at/updated_by and the answer and a GET right after show it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { legalEntityLicensesStream } from '../../src/domain/license/events.js';
import { readWholeStream } from '../../src/eventStore/eventStore.js';
import { ids } from '../support/fixtures.js';
import { startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import { createLicenseBody, licenseIds, licenseReferenceData } from './helpers.js';

describe.each(testBackends())('Update license on %s', (backend) => {
  let t: TestServer;
  let additional: Record<string, unknown>;
  beforeAll(async () => {
    t = await startTestServer({ backend, data: licenseReferenceData() });
    const created = await request(t.app)
      .post('/api/licenses')
      .set('authorization', `Bearer ${await t.token()}`)
      .send(createLicenseBody());
    expect(created.status).toBe(201);
    additional = created.body.data;
  });
  afterAll(async () => t.close());

  const patch = async (id: string, body: object, claims: Parameters<TestServer['token']>[0] = {}) =>
    request(t.app)
      .patch(`/api/licenses/${id}`)
      .set('authorization', `Bearer ${await t.token(claims)}`)
      .send(body);
  const expectError = (res: request.Response, status: number, type: string, message: string) => {
    expect(res.status).toBe(status);
    expect(res.body.error).toMatchObject({ type, message });
  };
  const eventsOf = async (legalEntityId: string) => (await readWholeStream(t.server.context.eventStore, legalEntityLicensesStream(legalEntityId))).length;

  it('401 without a token, 403 without license:write, 422 for a bad body', async () => {
    expectError(
      await request(t.app)
        .patch(`/api/licenses/${String(additional.id)}`)
        .send({}),
      401,
      'access_denied',
      'Invalid access token',
    );
    expectError(
      await patch(String(additional.id), { is_primary: false }, { scope: 'license:read' }),
      403,
      'forbidden',
      'Your scope does not allow to access this resource. Missing allowances: license:write',
    );
    const res = await patch(String(additional.id), { is_primary: false, expiry_date: 'tomorrow' });
    expect(res.status).toBe(422);
    expect(res.body.error.invalid[0].entry).toBe('$.expiry_date');
  });

  it('1. 404 “License was not found”', async () => {
    expectError(await patch('00000000-0000-4000-8000-00000000dead', { is_primary: false }), 404, 'not_found', 'License was not found');
  });

  it('2. 409 “Only additional license can be updated” for a primary licence', async () => {
    expectError(await patch(ids.primaryLicense, { is_primary: false }), 409, 'request_conflict', 'Only additional license can be updated');
  });

  it('3. 422 “Additional license can not be changed to primary” unless the request says is_primary=false', async () => {
    expectError(await patch(String(additional.id), { is_primary: true }), 422, 'validation_failed', 'Additional license can not be changed to primary');
    expectError(await patch(String(additional.id), { order_no: 'X' }), 422, 'validation_failed', 'Additional license can not be changed to primary');
  });

  it("4. 409 “License doesn't correspond to your legal entity”", async () => {
    expectError(
      await patch(licenseIds.importedAdditionalOfOther, { is_primary: false }),
      409,
      'request_conflict',
      "License doesn't correspond to your legal entity",
    );
  });

  it('5. 409 “License type can not be updated”', async () => {
    expectError(await patch(String(additional.id), { is_primary: false, type: 'MSP' }), 409, 'request_conflict', 'License type can not be updated');
  });

  it('6. 404 “No active primary license found for legal entity”', async () => {
    // A legal entity whose primary licence expired still has an additional licence imported earlier.
    const data = licenseReferenceData();
    data.licenses.push({
      ...data.licenses.find((l) => l.id === licenseIds.expiredPrimary)!,
      id: '00000000-0000-4000-8000-000000000199',
      is_primary: false,
      expiry_date: null,
    });
    const other = await startTestServer({ backend, data });
    try {
      const res = await request(other.app)
        .patch('/api/licenses/00000000-0000-4000-8000-000000000199')
        .set('authorization', `Bearer ${await other.token({ client_id: licenseIds.expiredPrimaryPharmacy })}`)
        .send({ is_primary: false, order_no: 'new' });
      expectError(res, 404, 'not_found', 'No active primary license found for legal entity');
    } finally {
      await other.close();
    }
  });

  it('checks in the seed’s order: is_primary=true on another legal entity’s licence gets check 3’s 422', async () => {
    expectError(
      await patch(licenseIds.importedAdditionalOfOther, { is_primary: true, type: 'MSP' }),
      422,
      'validation_failed',
      'Additional license can not be changed to primary',
    );
  });

  it('appends nothing and returns the licence as it is when no attribute changed', async () => {
    const before = await eventsOf(ids.legalEntity);
    const res = await patch(String(additional.id), { is_primary: false, type: 'PHARMACY', license_number: 'fd123443', order_no: 'ORD-77' });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual(additional);
    expect(await eventsOf(ids.legalEntity)).toBe(before);
  });

  it('updates what changed, sets updated_at/updated_by, and a GET right after shows it', async () => {
    const res = await patch(String(additional.id), { is_primary: false, order_no: 'ORD-78', expiry_date: null }, { sub: ids.otherUser });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      order_no: 'ORD-78',
      expiry_date: null,
      license_number: 'fd123443',
      updated_by: ids.otherUser,
      inserted_by: ids.user,
    });
    expect(res.body.data.updated_at > String(additional.updated_at)).toBe(true);
    const got = await request(t.app)
      .get(`/api/licenses/${String(additional.id)}`)
      .set('authorization', `Bearer ${await t.token()}`);
    expect(got.body.data).toEqual(res.body.data);
  });

  it('refuses dates out of order after the update (as Create does)', async () => {
    expectError(
      await patch(String(additional.id), { is_primary: false, active_from_date: '2030-01-01', expiry_date: '2029-01-01' }),
      422,
      'validation_failed',
      'License can not have active from date later than expiration date',
    );
  });
});
