/**
 * The token settings through HTTP: AUTH_ISSUER, AUTH_AUDIENCE, AUTH_MAX_TOKEN_LIFETIME_SECONDS and
 * AUTH_CLOCK_SKEW_SECONDS as configured; and the embedded default's development iss/aud and demo token.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import request from 'supertest';
import { DEV_AUDIENCE, DEV_ISSUER, mintToken } from '../../src/auth/devKeys.js';
import { AUDIT_READ_ALL, MIS_SCOPES } from '../../src/auth/scopes.js';
import { ids } from '../support/fixtures.js';
import { startTestServer, testBackends, type TestServer } from '../support/testServer.js';

const ISSUER = 'https://auth.example.test';
const AUDIENCE = 'urn:test:device-dispense-registry';
const now = () => Math.floor(Date.now() / 1000);
const PATH = '/api/device_dispenses';

function expectInvalidAccessToken(res: request.Response): void {
  expect(res.body.error).toEqual({ type: 'access_denied', message: 'Invalid access token' });
  expect(res.status).toBe(401);
}

describe.each(testBackends())('configured token checks on %s', (backend) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      backend,
      env: { AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE, AUTH_MAX_TOKEN_LIFETIME_SECONDS: '3600', AUTH_CLOCK_SKEW_SECONDS: '30' },
    });
  });
  afterAll(async () => t.close());

  const get = async (claims: Parameters<TestServer['token']>[0]) =>
    request(t.app)
      .get(PATH)
      .set('authorization', `Bearer ${await t.token({ iss: ISSUER, aud: AUDIENCE, ...claims })}`);

  it('accepts a token with the configured iss and aud', async () => {
    const res = await get({});
    expect(res.body.meta).toMatchObject({ code: 200 });
    expect(res.status).toBe(200);
  });

  it('401 for a wrong or missing iss', async () => {
    expectInvalidAccessToken(await get({ iss: 'https://evil.example.test' }));
    expectInvalidAccessToken(
      await request(t.app)
        .get(PATH)
        .set('authorization', `Bearer ${await t.token({ aud: AUDIENCE })}`),
    );
  });

  it('401 for a wrong or missing aud', async () => {
    expectInvalidAccessToken(await get({ aud: 'urn:another-service' }));
    expectInvalidAccessToken(
      await request(t.app)
        .get(PATH)
        .set('authorization', `Bearer ${await t.token({ iss: ISSUER })}`),
    );
  });

  it('401 for exp beyond AUTH_MAX_TOKEN_LIFETIME_SECONDS: in the year 9999, and two hours ahead', async () => {
    expectInvalidAccessToken(await get({ exp: Date.UTC(9999, 0, 1) / 1000 }));
    expectInvalidAccessToken(await get({ exp: now() + 7200 }));
    expect((await get({ exp: now() + 3000 })).status).toBe(200);
  });

  it('401 for iat in the future beyond AUTH_CLOCK_SKEW_SECONDS; within it is fine', async () => {
    expectInvalidAccessToken(await get({ iat: now() + 120 }));
    expect((await get({ iat: now() + 10 })).status).toBe(200);
  });

  it('401 before nbf; after it the token works', async () => {
    expectInvalidAccessToken(await get({ nbf: now() + 120 }));
    expect((await get({ nbf: now() - 60 })).status).toBe(200);
  });

  it('401 for a token that expired beyond the skew', async () => {
    expectInvalidAccessToken(await get({ exp: now() - 120 }));
  });
});

describe('the embedded default (development key)', () => {
  let t: TestServer;
  // No AUTH_JWKS_FILE (an empty value counts as unset): the server makes its development key and demo token.
  beforeAll(async () => {
    t = await startTestServer({ env: { AUTH_JWKS_FILE: '' } });
  });
  afterAll(async () => t.close());

  const devToken = () => {
    const token = t.server.dev.token;
    if (!token) throw new Error('no development token');
    return token;
  };

  it('prints a demo token with the development iss and aud and own-entity scopes only', async () => {
    const claims = decodeJwt(devToken().demoToken);
    expect(claims).toMatchObject({ iss: DEV_ISSUER, aud: DEV_AUDIENCE, sub: ids.user, client_id: ids.legalEntity });
    expect(String(claims.scope).split(' ').sort()).toEqual([...MIS_SCOPES].sort());
    expect(String(claims.scope).split(' ')).not.toContain(AUDIT_READ_ALL);
    expect(claims.exp! - claims.iat!).toBe(12 * 3600);
    const res = await request(t.app).get('/api/audit/events').set('authorization', `Bearer ${devToken().demoToken}`);
    expect(res.status).toBe(200);
  });

  it('requires the development iss and aud of tokens on the development key', async () => {
    const mint = (extra: { issuer?: string; audience?: string }) =>
      mintToken(devToken().privateJwk, { sub: ids.user, client_id: ids.legalEntity, scope: 'device_dispense:read', ...extra });
    const call = async (token: string) => request(t.app).get(PATH).set('authorization', `Bearer ${token}`);
    expectInvalidAccessToken(await call(await mint({ issuer: DEV_ISSUER })));
    expectInvalidAccessToken(await call(await mint({ audience: DEV_AUDIENCE })));
    expect((await call(await mint({ issuer: DEV_ISSUER, audience: DEV_AUDIENCE }))).status).toBe(200);
  });
});
