/**
 * A sync licence method whose read model does not show the change in time (the licences projection
 * stopped here; in production, held back e.g. by a long transaction on the server) answers 503 with
 * Retry-After in the ЕСОЗ error shape, never a 500; the change itself is committed and shows once the
 * projection runs again.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { ids } from '../support/fixtures.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { createLicenseBody, licenseReferenceData } from './helpers.js';

describe('a licence created while its read model is behind (PGlite)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ data: licenseReferenceData() });
  });
  afterAll(async () => t?.close());

  it('503 service_unavailable with Retry-After after the 30 s read-your-writes wait; the licence is there once the projection runs', async () => {
    const auth = `Bearer ${await t.token()}`;
    await t.server.context.projections.licenses.stop();
    const res = await request(t.app).post('/api/licenses').set('authorization', auth).send(createLicenseBody());
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body.error).toEqual({ type: 'service_unavailable', message: 'Service is temporarily unavailable. Please retry later.' });
    await t.server.context.projections.licenses.start();
    const { rows } = await t.server.context.database.pool.query<{ n: number }>(
      `select count(*)::int as n from es_events where stream_name = $1 and event_type = 'LicenseCreated'`,
      [`legal_entity_licenses-${ids.legalEntity}`],
    );
    expect(rows[0]!.n).toBe(1);
  }, 60_000);
});
