/** Get licenses (spec §2.4) and Get license by id: active licences of the token's legal entity only. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { ids } from '../support/fixtures.js';
import { startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import { createLicenseBody, licenseIds, licenseReferenceData } from './helpers.js';

describe.each(testBackends())('Get licenses on %s', (backend) => {
  let t: TestServer;
  let created: { id: string };
  beforeAll(async () => {
    t = await startTestServer({ backend, data: licenseReferenceData() });
    created = (
      await request(t.app)
        .post('/api/licenses')
        .set('authorization', `Bearer ${await t.token()}`)
        .send(createLicenseBody())
    ).body.data;
  });
  afterAll(async () => t.close());

  const get = async (path: string, claims: Parameters<TestServer['token']>[0] = {}) =>
    request(t.app)
      .get(path)
      .set('authorization', `Bearer ${await t.token(claims)}`);

  it('lists the legal entity’s active licences, primary included, with paging', async () => {
    const res = await get('/api/licenses');
    expect(res.status).toBe(200);
    expect(res.body.meta.type).toBe('list');
    expect(res.body.data.map((l: { id: string }) => l.id).sort()).toEqual([ids.primaryLicense, created.id].sort());
    expect(res.body.paging).toEqual({ page: 1, page_size: 50, total_entries: 2, total_pages: 1 });
    const page2 = await get('/api/licenses?page=2&page_size=1');
    expect(page2.body.data).toHaveLength(1);
    expect(page2.body.paging).toEqual({ page: 2, page_size: 1, total_entries: 2, total_pages: 2 });
  });

  it('filters by id, license_number, type and is_primary', async () => {
    expect((await get(`/api/licenses?id=${created.id}`)).body.data.map((l: { id: string }) => l.id)).toEqual([created.id]);
    expect((await get('/api/licenses?license_number=fd123443')).body.data.map((l: { id: string }) => l.id)).toEqual([created.id]);
    expect((await get('/api/licenses?is_primary=true')).body.data.map((l: { id: string }) => l.id)).toEqual([ids.primaryLicense]);
    expect((await get('/api/licenses?type=MSP')).body.data).toEqual([]);
  });

  it('refuses bad query parameters with 422 query_parameter entries', async () => {
    const res = await get('/api/licenses?page_size=101&is_primary=yes');
    expect(res.status).toBe(422);
    expect(res.body.error.invalid.map((i: { entry: string; entry_type: string }) => [i.entry, i.entry_type])).toEqual([
      ['$.is_primary', 'query_parameter'],
      ['$.page_size', 'query_parameter'],
    ]);
  });

  it('shows another legal entity none of ours, and answers 404 for our licence by id', async () => {
    const other = await get('/api/licenses', { client_id: ids.otherLegalEntity });
    expect(other.body.data.map((l: { id: string }) => l.id).sort()).toEqual([ids.otherPrimaryLicense, licenseIds.importedAdditionalOfOther].sort());
    const res = await get(`/api/licenses/${created.id}`, { client_id: ids.otherLegalEntity });
    expect(res.status).toBe(404);
    expect(res.body.error).toEqual({ type: 'not_found', message: 'License was not found' });
  });

  it('needs license:read', async () => {
    const res = await get('/api/licenses', { scope: 'license:write' });
    expect(res.status).toBe(403);
    expect(res.body.error.message).toBe('Your scope does not allow to access this resource. Missing allowances: license:read');
  });
});
