/**
 * HTTP hygiene on a real server: no API answer may be stored by a cache (they carry patients' data,
 * and errors echo ids), no answer may be content-sniffed, a 401 names its scheme, a 201 says where
 * the record is, and the job's 303 has no Location (see docs/security-and-cli.md), as the OpenAPI
 * document says. Answers given by the fast lanes in front of Express carry the same headers.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { createBody, ids } from '../support/fixtures.js';
import { expectEsozError } from '../support/sideEffects.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import { createLicenseBody, licenseReferenceData } from '../licenses/helpers.js';

type Answer = { status: number; headers: Record<string, string | undefined> };
const expectApiHygiene = (res: Answer) => {
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['x-content-type-options']).toBe('nosniff');
};

describe.each(testBackends())('HTTP hygiene on %s', (backend) => {
  let t: TestServer;
  let auth: string;
  const dispenses = `/api/patients/${ids.patient}/device_dispenses`;
  /** One plain Create (a fast lane), as answered, and its processed job (one active dispense per device request). */
  let accepted: request.Response;
  let processed: request.Response;
  const dispenseId = newId();
  beforeAll(async () => {
    t = await startTestServer({ backend, data: licenseReferenceData() });
    auth = `Bearer ${await t.token()}`;
    accepted = await request(t.app).post(dispenses).set('authorization', auth).send(createBody(dispenseId));
    processed = await t.waitForJob(accepted.body.data.links[0].href);
  });
  afterAll(async () => t.close());

  describe('Cache-Control: no-store and nosniff on every /api answer', () => {
    it.each([
      ['a list', '/api/licenses', 200],
      ['a search', '/api/device_dispenses', 200],
      ['the audit history', '/api/audit/events', 200],
      ['the OpenAPI document', '/api/openapi.json', 200],
      ['a 404 of a record', `${dispenses}/${newId()}`, 404],
      ['a 404 of a job (fast lane)', `/api/jobs/${newId()}`, 404],
      ['a 404 of a route', '/api/nothing-here', 404],
      ['a 422', '/api/licenses?page=0', 422],
      ['a 400', '/api/licenses/%FF', 400],
    ])('%s: GET %s → %d', async (_what, path, status) => {
      const res = await request(t.app).get(path).set('authorization', auth);
      expect(res.status).toBe(status);
      expectApiHygiene(res);
    });

    it('a 202 of the fast lane (a plain Create), its job and the dispense it made', async () => {
      expect(accepted.status).toBe(202);
      expectApiHygiene(accepted);
      expect(processed.status).toBe(303);
      expectApiHygiene(processed);
      const record = await request(t.app).get(`${dispenses}/${dispenseId}`).set('authorization', auth);
      expect(record.status).toBe(200);
      expectApiHygiene(record);
    });

    it('a 401; and nosniff on the service answers outside /api', async () => {
      const refused = await request(t.app).get('/api/licenses');
      expect(refused.status).toBe(401);
      expectApiHygiene(refused);
      for (const path of ['/', '/health/live', '/docs', '/docs/assets/swagger-ui.css']) {
        const res = await request(t.app).get(path);
        expect([path, res.status]).toEqual([path, 200]);
        expect(res.headers['x-content-type-options']).toBe('nosniff');
      }
    });
  });

  describe('/docs', () => {
    it('has a CSP of its own origin only that no page may frame', async () => {
      const apiOrigin = new URL((await request(t.app).get('/api/licenses')).body.meta.url).origin; // PUBLIC_URL's
      for (const path of ['/docs', '/docs/init.js', '/docs/assets/swagger-ui-bundle.js']) {
        const res = await request(t.app).get(path);
        expect(res.status).toBe(200);
        expect(res.headers['content-security-policy']).toBe(
          "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
            `connect-src 'self' ${apiOrigin}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
        );
        expect(res.headers['x-frame-options']).toBe('DENY');
      }
    });
  });

  describe('WWW-Authenticate on 401', () => {
    it('without a token: Bearer', async () => {
      const res = await request(t.app).get('/api/licenses');
      expectEsozError(res, 401, { type: 'access_denied', message: 'Invalid access token' });
      expect(res.headers['www-authenticate']).toBe('Bearer');
    });

    it.each(['Bearer not-a-jwt', 'Basic dXNlcjpwYXNz'])('with a refused token (%s): Bearer error="invalid_token"', async (authorization) => {
      const res = await request(t.app).get(`/api/jobs/${newId()}`).set('authorization', authorization);
      expectEsozError(res, 401, { type: 'access_denied', message: 'Invalid access token' });
      expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    });

    it('a 403 has none', async () => {
      const res = await request(t.app)
        .get('/api/licenses')
        .set('authorization', `Bearer ${await t.token({ scope: 'device_dispense:read' })}`);
      expect(res.status).toBe(403);
      expect(res.headers['www-authenticate']).toBeUndefined();
    });
  });

  describe('Location', () => {
    it('a 201 of a licence points to it (a relative reference), also when replayed for its idempotency key', async () => {
      const key = `location-${newId()}`;
      const body = createLicenseBody({ order_no: `LOC-${key.slice(-6)}` });
      const created = await request(t.app).post('/api/licenses').set('authorization', auth).set('x-idempotency-key', key).send(body);
      expect(created.status).toBe(201);
      expect(created.headers.location).toBe(`/api/licenses/${created.body.data.id}`);
      const fetched = await request(t.app).get(created.headers.location!).set('authorization', auth);
      expect(fetched.status).toBe(200);
      expect(fetched.body.data).toEqual(created.body.data);
      const replayed = await request(t.app).post('/api/licenses').set('authorization', auth).set('x-idempotency-key', key).send(body);
      expect(replayed.status).toBe(201);
      expect(replayed.headers['idempotent-replayed']).toBe('true');
      expect(replayed.headers.location).toBe(created.headers.location);
    });

    it("the job's 303 has none (fast lane and Express), and the OpenAPI document declares none", async () => {
      const href: string = accepted.body.data.links[0].href;
      expect(processed.status).toBe(303);
      expect(processed.headers.location).toBeUndefined();
      const viaExpress = await request(t.app).get(href).set('authorization', auth).set('x-request-id', 'x'.repeat(201)).query({});
      expect(viaExpress.status).toBe(303);
      expect(viaExpress.headers.location).toBeUndefined();
      const viaPrefer = await request(t.app).get(`${href}?`).set('authorization', auth).set('prefer', 'wait=1');
      expect(viaPrefer.status).toBe(303);
      expect(viaPrefer.headers.location).toBeUndefined();

      const document = (await request(t.app).get('/api/openapi.json')).body;
      expect(document.paths['/api/jobs/{id}'].get.responses['303'].headers).toBeUndefined();
      expect(document.paths['/api/licenses'].post.responses['201']).toEqual({ $ref: '#/components/responses/Created' });
      expect(Object.keys(document.components.responses.Created.headers)).toEqual(['Location']);
      expect(document.paths['/api/licenses'].get.responses['401']).toEqual({ $ref: '#/components/responses/Unauthorized' });
      expect(Object.keys(document.components.responses.Unauthorized.headers)).toEqual(['WWW-Authenticate']);
    });
  });
});

describe('with CORS configured', () => {
  it('an allowed origin may read Location, Retry-After and WWW-Authenticate; answers keep no-store and nosniff', async () => {
    const origin = 'https://mis.example.com';
    const t = await startTestServer({ data: licenseReferenceData(), env: { CORS_ALLOWED_ORIGINS: origin } });
    try {
      const created = await request(t.app)
        .post('/api/licenses')
        .set('authorization', `Bearer ${await t.token()}`)
        .set('origin', origin)
        .send(createLicenseBody({ order_no: 'CORS-1' }));
      expect(created.status).toBe(201);
      expect(created.headers['access-control-expose-headers']).toBe('X-Request-ID, Location, Retry-After, WWW-Authenticate');
      expect(created.headers.location).toBe(`/api/licenses/${created.body.data.id}`);
      expectApiHygiene(created);
    } finally {
      await t.close();
    }
  });
});
