/**
 * The HTTP frame every endpoint shares: tokens, scopes, ЕСОЗ envelope and error JSON, request ids,
 * malformed JSON, content type, body size, validation and unexpected errors.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { SignJWT } from 'jose';
import request from 'supertest';
import { z } from 'zod';
import { createTokenVerifier } from '../../src/auth/accessTokens.js';
import { createHttpApp, principalOf } from '../../src/http/app.js';
import { sendData } from '../../src/http/envelope.js';
import { parseOrThrow } from '../../src/http/validation.js';
import { silentLogger } from '../../src/logger.js';
import { createTokenIssuer, unsignedToken, type TokenIssuer } from '../support/tokens.js';

const claims = { sub: 'user-1', client_id: 'le-1', scope: 'device_dispense:read device_dispense:stop' };
const echoSchema = z.object({ id: z.uuid(), status: z.enum(['in_progress']), quantity: z.object({ value: z.number() }) });

let issuer: TokenIssuer;
let app: ReturnType<typeof createHttpApp>;
let good: string;

beforeAll(async () => {
  issuer = await createTokenIssuer();
  good = await issuer.token(claims);
  app = createHttpApp({
    logger: silentLogger(),
    verifier: createTokenVerifier({ jwks: issuer.jwks }),
    bodyLimit: '1kb',
    routes: (router, authorize) => {
      router.get('/api/read', authorize('device_dispense:read'), (req, res) => sendData(req, res, 200, { user: principalOf(res).userId }));
      router.patch('/api/write', authorize('device_dispense:mark_in_error'), (req, res) => sendData(req, res, 200, {}));
      router.post('/api/echo', authorize(null), (req, res) => sendData(req, res, 201, parseOrThrow(echoSchema, req.body, 'json_data_property')));
      router.patch('/api/stop', authorize('device_dispense:stop'), (req, res) => sendData(req, res, 202, { status: 'pending' }));
      router.get('/api/boom', authorize(null), () => {
        throw new Error('relation "secret_table" does not exist at SELECT * FROM secret_table');
      });
    },
  });
});

const invalidToken = { type: 'access_denied', message: 'Invalid access token' };

describe('access tokens', () => {
  it('accepts a good token and answers in the ЕСОЗ envelope, echoing X-Request-ID', async () => {
    const res = await request(app).get('/api/read').set('authorization', `Bearer ${good}`).set('x-request-id', 'req-123');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      meta: { code: 200, url: expect.stringMatching(/\/api\/read$/), type: 'object', request_id: 'req-123' },
      data: { user: 'user-1' },
    });
    expect(res.headers['x-request-id']).toBe('req-123');
  });

  it('makes up a request id when none is sent', async () => {
    const res = await request(app).get('/api/read').set('authorization', `Bearer ${good}`);
    expect(res.body.meta.request_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  const cases: Array<[string, () => Promise<string | undefined>]> = [
    ['missing', async () => undefined],
    ['not a bearer token', async () => 'Basic dXNlcjpwYXNz'],
    ['malformed', async () => 'Bearer not.a.jwt'],
    ['expired', async () => `Bearer ${await issuer.token(claims, { expiresIn: -60 })}`],
    ['wrongly signed', async () => `Bearer ${await (await createTokenIssuer()).token(claims)}`],
    ['alg: none', async () => `Bearer ${unsignedToken(claims)}`],
    [
      'HMAC-signed',
      async () =>
        `Bearer ${await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode('a-shared-secret-of-32-bytes!!!!!'))}`,
    ],
  ];
  it.each(cases)('refuses a %s token with 401 "Invalid access token"', async (_name, header) => {
    const value = await header();
    const req = request(app).get('/api/read');
    const res = await (value ? req.set('authorization', value) : req);
    expect(res.status).toBe(401);
    expect(res.body.error).toEqual(invalidToken);
    expect(res.body.meta.code).toBe(401);
  });

  it('refuses a token without the scope with 403 and the missing allowance verbatim', async () => {
    const res = await request(app).patch('/api/write').set('authorization', `Bearer ${good}`);
    expect(res.status).toBe(403);
    expect(res.body.error).toEqual({
      type: 'forbidden',
      message: 'Your scope does not allow to access this resource. Missing allowances: device_dispense:mark_in_error',
    });
  });
});

describe('request bodies', () => {
  const post = (body: string, type = 'application/json') =>
    request(app).post('/api/echo').set('authorization', `Bearer ${good}`).set('content-type', type).send(body);

  it('answers malformed JSON with 400 request_malformed', async () => {
    const res = await post('{"id": ');
    expect(res.status).toBe(400);
    expect(res.body.error).toEqual({
      type: 'request_malformed',
      message: 'Malformed request. Probably, you have sent corrupted JSON.',
      invalid: [{ entry_type: 'request', rules: [{ rule: 'json', description: 'invalid JSON', params: [] }] }],
    });
  });

  it('answers a body that is not JSON with 415 content_type_invalid', async () => {
    const res = await post('id=1', 'application/x-www-form-urlencoded');
    expect(res.status).toBe(415);
    expect(res.body.error.type).toBe('content_type_invalid');
    expect(res.body.error.message).toMatch(/^Invalid Content-Type header/);
  });

  it('answers an oversized body with 413 and nothing is processed', async () => {
    const res = await post(JSON.stringify({ note: 'x'.repeat(2048) }));
    expect(res.status).toBe(413);
    expect(res.body.error.type).toBe('request_entity_too_large');
  });

  it('accepts a PATCH without a body (stop has none)', async () => {
    const res = await request(app).patch('/api/stop').set('authorization', `Bearer ${good}`);
    expect(res.status).toBe(202);
  });

  it('answers schema violations with 422 validation_failed and one invalid[] entry per problem', async () => {
    const res = await post(JSON.stringify({ id: 'nope', status: 'completed', quantity: { value: 'ten' } }));
    expect(res.status).toBe(422);
    expect(res.body.error.type).toBe('validation_failed');
    expect(res.body.error.invalid).toEqual([
      { entry: '$.id', entry_type: 'json_data_property', rules: [{ rule: 'format', description: 'expected "nope" to be a valid uuid', params: ['uuid'] }] },
      {
        entry: '$.status',
        entry_type: 'json_data_property',
        rules: [{ rule: 'inclusion', description: 'value is not allowed in enum', params: ['in_progress'] }],
      },
      {
        entry: '$.quantity.value',
        entry_type: 'json_data_property',
        rules: [{ rule: 'cast', description: 'type mismatch. Expected Number but got String', params: ['number'] }],
      },
    ]);
  });

  it('names a missing property as required', async () => {
    const res = await post(JSON.stringify({ id: '0b1f5d36-4a9e-4f7e-9a51-6f4c2a0e1a01', status: 'in_progress' }));
    expect(res.status).toBe(422);
    expect(res.body.error.invalid).toEqual([
      {
        entry: '$.quantity',
        entry_type: 'json_data_property',
        rules: [{ rule: 'required', description: 'required property quantity was not present', params: [] }],
      },
    ]);
  });
});

describe('everything else', () => {
  it('answers an unknown route with 404 not_found', async () => {
    const res = await request(app).get('/api/nowhere');
    expect(res.status).toBe(404);
    expect(res.body.error.type).toBe('not_found');
  });

  it('answers an unexpected error with 500 internal_error and no stack trace or SQL', async () => {
    const res = await request(app).get('/api/boom').set('authorization', `Bearer ${good}`);
    expect(res.status).toBe(500);
    expect(res.body.error).toEqual({ type: 'internal_error', message: 'Internal server error' });
    expect(JSON.stringify(res.body)).not.toMatch(/secret_table|SELECT|at /);
  });
});
