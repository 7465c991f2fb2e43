/**
 * HTTP behaviour that must not depend on what a client claims: conditional requests are ignored,
 * meta.url comes from PUBLIC_URL and never from Host, OPTIONS needs CORS to be configured.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { expectEsozError } from '../support/sideEffects.js';
import { startTestServer, testBackends, type TestServer } from '../support/testServer.js';

const PUBLIC_URL = 'https://registry.example.gov.ua/esoz';
const MIS_ORIGIN = 'https://mis.example.com';

describe.each(testBackends())('HTTP headers on %s', (backend) => {
  let t: TestServer;
  let auth: string;
  beforeAll(async () => {
    t = await startTestServer({ backend, env: { PUBLIC_URL: `${PUBLIC_URL}/`, CORS_ALLOWED_ORIGINS: `${MIS_ORIGIN}, https://other.example.com` } });
    auth = `Bearer ${await t.token()}`;
  });
  afterAll(async () => t.close());

  describe('conditional requests are ignored', () => {
    it.each(['*', '"anything"', 'W/"x"'])('If-None-Match: %s on a GET answers 200 with the data, never an empty 304', async (value) => {
      const res = await request(t.app).get('/api/licenses').set('authorization', auth).set('if-none-match', value);
      expect(res.status).toBe(200);
      expect(res.body.meta.type).toBe('list');
      expect(res.headers.etag).toBeUndefined();
    });

    it('If-Modified-Since in the future also answers 200', async () => {
      const res = await request(t.app).get('/api/licenses').set('authorization', auth).set('if-modified-since', 'Fri, 01 Jan 2100 00:00:00 GMT');
      expect(res.status).toBe(200);
    });
  });

  describe('meta.url', () => {
    it('is PUBLIC_URL (trailing slash dropped) plus the path, whatever Host says', async () => {
      const res = await request(t.app)
        .get('/api/licenses?page=1')
        .set('authorization', auth)
        .set('host', 'evil.example.net')
        .set('x-forwarded-host', 'evil.example.net');
      expect(res.status).toBe(200);
      expect(res.body.meta.url).toBe(`${PUBLIC_URL}/api/licenses?page=1`);
    });

    it('in error answers too', async () => {
      const res = await request(t.app).get('/api/licenses').set('host', 'evil.example.net');
      expectEsozError(res, 401, { type: 'access_denied' });
      expect(res.body.meta.url).toBe(`${PUBLIC_URL}/api/licenses`);
    });
  });

  describe('OPTIONS and CORS', () => {
    it('a preflight from a configured origin gets 204 and the CORS headers', async () => {
      const res = await request(t.app).options('/api/licenses').set('origin', MIS_ORIGIN).set('access-control-request-method', 'POST');
      expect(res.status).toBe(204);
      expect(res.headers).toMatchObject({
        'access-control-allow-origin': MIS_ORIGIN,
        'access-control-allow-methods': 'GET, POST, PATCH',
        'access-control-allow-headers': expect.stringContaining('X-Idempotency-Key'),
        vary: expect.stringContaining('Origin'),
      });
    });

    it('an actual request from a configured origin carries Access-Control-Allow-Origin', async () => {
      const res = await request(t.app).get('/api/licenses').set('authorization', auth).set('origin', MIS_ORIGIN);
      expect(res.status).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBe(MIS_ORIGIN);
    });

    it('another origin gets no CORS headers and its preflight the 404 of an unserved method', async () => {
      const res = await request(t.app).options('/api/licenses').set('origin', 'https://evil.example.net').set('access-control-request-method', 'POST');
      expectEsozError(res, 404, { type: 'not_found', message: 'Route not found' });
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      expect(res.headers.allow).toBeUndefined();
    });
  });
});

describe('OPTIONS without CORS_ALLOWED_ORIGINS', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => t.close());

  it.each(['/api/licenses', '/api/device_dispenses', '/api/jobs/00000000-0000-4000-8000-000000000001', '/api/nowhere'])(
    'OPTIONS %s answers 404 in ЕСОЗ error JSON like DELETE does, with no Allow and no CORS headers',
    async (path) => {
      const options = await request(t.app).options(path).set('origin', MIS_ORIGIN).set('access-control-request-method', 'GET');
      expectEsozError(options, 404, { type: 'not_found', message: 'Route not found' });
      expect(options.headers.allow).toBeUndefined();
      expect(options.headers['access-control-allow-origin']).toBeUndefined();
      const del = await request(t.app).delete(path);
      expect(del.status).toBe(options.status);
      expect(del.body.error).toEqual(options.body.error);
    },
  );

  it('meta.url defaults to http://HOST:PORT from the settings, not the Host header', async () => {
    const res = await request(t.app).get('/api/licenses').set('host', 'evil.example.net');
    expect(res.body.meta.url).toBe('http://127.0.0.1:0/api/licenses');
  });
});
