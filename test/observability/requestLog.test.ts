/** Request logs: the fields an operator needs, never the token or a signed payload. */
import { expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import request from 'supertest';
import { createTokenVerifier } from '../../src/auth/accessTokens.js';
import { createHttpApp } from '../../src/http/app.js';
import { sendData } from '../../src/http/envelope.js';
import { createTokenIssuer } from '../support/tokens.js';

it('logs request id, method, route template, status, duration, user and legal entity; redacts the rest', async () => {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => void (lines.push(chunk.toString()), done()) });
  const issuer = await createTokenIssuer();
  const token = await issuer.token({ sub: 'user-42', client_id: 'le-7', scope: 'device_dispense:complete' });
  const app = createHttpApp({
    logger: pino({ level: 'info' }, sink),
    verifier: createTokenVerifier({ jwks: issuer.jwks }),
    routes: (router, authorize) => {
      router.patch('/api/things/:id/actions/complete', authorize('device_dispense:complete'), (req, res) => sendData(req, res, 200, { ok: true }));
    },
  });
  const signed = 'eyJhbGciOiJSUzI1NiJ9.SECRET-SIGNED-PAYLOAD.c2lnbmF0dXJl';
  const res = await request(app)
    .patch('/api/things/abc/actions/complete?x=1')
    .set('authorization', `Bearer ${token}`)
    .set('x-request-id', 'req-123')
    .send({ signed_data: signed });
  expect(res.status).toBe(200);

  const entry = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.msg === 'http request');
  expect(entry).toMatchObject({
    request_id: 'req-123',
    route: '/api/things/:id/actions/complete',
    user_id: 'user-42',
    legal_entity_id: 'le-7',
    req: { method: 'PATCH', path: '/api/things/abc/actions/complete' },
    res: { status: 200 },
    ms: expect.any(Number),
  });
  const all = lines.join('\n');
  expect(all).not.toContain(token);
  expect(all).not.toContain('SECRET-SIGNED-PAYLOAD');
  expect(all.toLowerCase()).not.toContain('authorization');
});
