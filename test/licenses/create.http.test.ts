/**
 * Create license (spec §2.2) over HTTP: every check in the page's order, codes and messages verbatim,
 * and the response (and a GET right after it) showing the new licence.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { ids } from '../support/fixtures.js';
import { NOT_AN_ACTIVE_EMPLOYEE } from '../../src/commands/shared/employment.js';
import { startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import { createLicenseBody, licenseIds, licenseReferenceData } from './helpers.js';

describe.each(testBackends())('Create license on %s', (backend) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ backend, data: licenseReferenceData() });
  });
  afterAll(async () => t.close());

  const post = async (body: object, claims: Parameters<TestServer['token']>[0] = {}) =>
    request(t.app)
      .post('/api/licenses')
      .set('authorization', `Bearer ${await t.token(claims)}`)
      .send(body);
  const expectError = (res: request.Response, status: number, type: string, message: string) => {
    expect(res.status).toBe(status);
    expect(res.body.error).toMatchObject({ type, message });
  };

  it('401 without a token, 403 without license:write', async () => {
    expectError(await request(t.app).post('/api/licenses').send(createLicenseBody()), 401, 'access_denied', 'Invalid access token');
    expectError(
      await post(createLicenseBody(), { scope: 'license:read' }),
      403,
      'forbidden',
      'Your scope does not allow to access this resource. Missing allowances: license:write',
    );
  });

  it('2. 422 when the request does not match the schema', async () => {
    const res = await post(createLicenseBody({ issued_by: undefined, issued_date: '28.02.2022' }));
    expect(res.status).toBe(422);
    expect(res.body.error.invalid.map((i: { entry: string }) => i.entry)).toEqual(['$.issued_by', '$.issued_date']);
  });

  it('3. 422 “Legal entity must be in active or suspended status”', async () => {
    expectError(
      await post(createLicenseBody(), { client_id: ids.inactiveLegalEntity }),
      422,
      'validation_failed',
      'Legal entity must be in active or suspended status',
    );
    // A legal entity the reference data does not know has no employees: its token is refused first
    // (caller class employee, issue 28), before the seed's checks.
    expectError(await post(createLicenseBody(), { client_id: ids.unknownLegalEntity }), 403, 'forbidden', NOT_AN_ACTIVE_EMPLOYEE);
  });

  it('4. 422 “Only additional license can be created”', async () => {
    expectError(await post(createLicenseBody({ is_primary: true })), 422, 'validation_failed', 'Only additional license can be created');
  });

  it('5. 422 “value is not allowed in enum” for a type outside LICENSE_TYPE', async () => {
    const res = await post(createLicenseBody({ type: 'LAB' }));
    expectError(res, 422, 'validation_failed', 'value is not allowed in enum');
    expect(res.body.error.invalid[0]).toMatchObject({ entry: '$.type', rules: [{ rule: 'inclusion', params: ['MSP', 'PHARMACY'] }] });
  });

  it('6. 409 “Legal entity type and license type mismatch”', async () => {
    expectError(await post(createLicenseBody({ type: 'MSP' })), 409, 'request_conflict', 'Legal entity type and license type mismatch');
  });

  it('7. 404 “No active primary license found for legal entity” (none, or only an expired one)', async () => {
    expectError(
      await post(createLicenseBody({ type: 'MSP' }), { client_id: licenseIds.primaryCareWithoutLicense }),
      404,
      'not_found',
      'No active primary license found for legal entity',
    );
    expectError(
      await post(createLicenseBody(), { client_id: licenseIds.expiredPrimaryPharmacy }),
      404,
      'not_found',
      'No active primary license found for legal entity',
    );
  });

  it('9. 422 for dates out of order', async () => {
    expectError(
      await post(createLicenseBody({ issued_date: '2022-03-02' })),
      422,
      'validation_failed',
      'License can not be issued later than active from date',
    );
    expectError(
      await post(createLicenseBody({ expiry_date: '2022-02-28' })),
      422,
      'validation_failed',
      'License can not have active from date later than expiration date',
    );
  });

  it('creates an additional licence for a suspended legal entity too; the answer and a GET show it', async () => {
    const res = await post(createLicenseBody(), { client_id: licenseIds.suspendedPharmacy });
    expect(res.status).toBe(201);
    expect(res.body.data).toMatchObject({
      legal_entity_id: licenseIds.suspendedPharmacy,
      type: 'PHARMACY',
      is_primary: false,
      is_active: true,
      license_number: 'fd123443',
      expiry_date: '2027-02-28',
      inserted_by: ids.user,
      updated_by: ids.user,
    });
    const got = await request(t.app)
      .get(`/api/licenses/${res.body.data.id}`)
      .set('authorization', `Bearer ${await t.token({ client_id: licenseIds.suspendedPharmacy })}`);
    expect(got.body.data).toEqual(res.body.data);
  });

  it('8. 409 “License with type PHARMACY is already present” for a second licence of a type', async () => {
    expect((await post(createLicenseBody())).status).toBe(201);
    expectError(await post(createLicenseBody({ license_number: 'another' })), 409, 'request_conflict', 'License with type PHARMACY is already present');
  });

  it('checks in order: a request breaking rules 4 and 6 gets rule 4’s error', async () => {
    expectError(await post(createLicenseBody({ is_primary: true, type: 'MSP' })), 422, 'validation_failed', 'Only additional license can be created');
  });

  it('of two creates of one type at the same moment exactly one succeeds, the other gets 409', async () => {
    const client = { client_id: licenseIds.racePharmacy };
    const results = await Promise.all([post(createLicenseBody({ license_number: 'A' }), client), post(createLicenseBody({ license_number: 'B' }), client)]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    expect(results.find((r) => r.status === 409)!.body.error.message).toBe('License with type PHARMACY is already present');
    const list = await request(t.app)
      .get('/api/licenses?is_primary=false&type=PHARMACY')
      .set('authorization', `Bearer ${await t.token(client)}`);
    expect(list.body.data).toHaveLength(1);
    expect(['A', 'B']).toContain(list.body.data[0].license_number);
  });
});
