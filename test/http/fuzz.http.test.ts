/**
 * Property-based fuzzing of every route (listed from the router itself): whatever path, query,
 * headers and body arrive, the answer is never a 5xx, a 4xx is ЕСОЗ error JSON with meta.url on
 * PUBLIC_URL, and the event log (and the job queue) only changes for a request that was accepted.
 *
 * Seeded and bounded for `npm test` (FUZZ_RUNS cases per route and backend, default below);
 * `npm run fuzz` runs the same file with FUZZ_RUNS=5000. FUZZ_SEED replays a reported failure.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { fc, it } from '@fast-check/jest';
import express from 'express';
import request from 'supertest';
import { z } from 'zod';
import { registerRoutes } from '../../src/http/routes.js';
import type { Context } from '../../src/server.js';
import { FUZZ_ADDITIONAL_LICENSE, headers, pathSegment, queryString, rawBody, type FuzzHeaders, type RawBody } from '../support/fuzzArbitraries.js';
import { licenseReferenceData } from '../licenses/helpers.js';
import { ids } from '../support/fixtures.js';
import { sideEffects } from '../support/sideEffects.js';
import { startTestServer, testBackends, type TestServer } from '../support/testServer.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 120);
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_201);
const PUBLIC_URL = 'https://registry.example.gov.ua';
/** Generous per case (a PostgreSQL round trip or four), so a long run never trips jest's timeout. */
const TIMEOUT_MS = 30_000 + RUNS * 200;

const ruleSchema = z.strictObject({ rule: z.string().min(1), description: z.string(), params: z.array(z.unknown()) });
const errorEnvelopeSchema = z.strictObject({
  meta: z.strictObject({
    code: z.number().int(),
    url: z.string().startsWith(`${PUBLIC_URL}/`),
    type: z.literal('object'),
    request_id: z.string().min(1),
    idempotency_key: z.string().optional(),
  }),
  error: z.strictObject({
    type: z.enum([
      'request_malformed',
      'access_denied',
      'forbidden',
      'not_found',
      'request_conflict',
      'content_type_invalid',
      'validation_failed',
      'request_entity_too_large',
    ]),
    message: z.string().optional(),
    invalid: z.array(z.strictObject({ entry: z.string().optional(), entry_type: z.string().min(1), rules: z.array(ruleSchema).min(1) })).optional(),
  }),
});
type Route = { method: 'get' | 'post' | 'patch'; path: string };

/**
 * Every route, from the router registerRoutes builds (so a new endpoint is fuzzed without edits here).
 * Listing calls no handler, so the context is never read.
 */
function listRoutes(): Route[] {
  const router = express.Router();
  registerRoutes(router, () => async (_req, _res, next) => next(), { context: {} as unknown as Context, accept: () => Promise.reject(new Error('not wired')) });
  return router.stack.flatMap((layer) => {
    const route = layer.route;
    if (!route) return [];
    const methods = new Set(route.stack.map((inner) => inner.method).filter((method) => method !== undefined));
    return [...methods].map((method) => ({ method: method as Route['method'], path: route.path }));
  });
}
const ROUTES = listRoutes();

describe.each(testBackends())('fuzzing every route on %s', (backend) => {
  let t: TestServer;
  const tokens: Record<'good' | 'read-only', string> = { good: '', 'read-only': '' };
  beforeAll(async () => {
    const data = licenseReferenceData();
    const primary = data.licenses.find((license) => license.id === ids.primaryLicense)!;
    data.licenses.push({ ...primary, id: FUZZ_ADDITIONAL_LICENSE, is_primary: false, type: 'MSP', license_number: 'FUZZ-1' });
    t = await startTestServer({ backend, data, env: { PUBLIC_URL } });
    // No job runs: every event appended during a case is the case's own, synchronous one.
    await t.server.worker.stop();
    tokens.good = await t.token();
    tokens['read-only'] = await t.token({ scope: 'license:read' });
  });
  afterAll(async () => t.close());

  const send = (route: Route, path: string, h: FuzzHeaders, body: RawBody) => {
    let req = request(t.app)[route.method](path);
    if (h.auth === 'garbage') req = req.set('authorization', 'Bearer \u00ff.garbage');
    else if (h.auth !== 'none') req = req.set('authorization', `Bearer ${tokens[h.auth]}`);
    if (h.idempotencyKey !== null) req = req.set('x-idempotency-key', h.idempotencyKey);
    if (h.ifNoneMatch !== null) req = req.set('if-none-match', h.ifNoneMatch);
    if (h.host !== null) req = req.set('host', h.host);
    if (h.requestId !== null) req = req.set('x-request-id', h.requestId);
    if (h.origin !== null) req = req.set('origin', h.origin);
    if (route.method === 'get' || body.bytes === null) return req;
    req = req.set('content-type', body.contentType ?? 'application/json');
    if (body.contentEncoding) req = req.set('content-encoding', body.contentEncoding);
    // The bytes as generated: superagent must not re-serialise them.
    const bytes = body.bytes;
    return req.serialize(() => bytes as unknown as string).send(bytes);
  };

  it('lists every route of the API from the router', () => {
    expect(ROUTES.length).toBeGreaterThanOrEqual(16);
    expect(ROUTES).toContainEqual({ method: 'patch', path: '/api/licenses/:id' });
    expect(ROUTES).toContainEqual({ method: 'post', path: '/api/patients/:patient_id/device_dispenses' });
  });

  // One property per route, so a failure names it; fast-check shrinks it to the smallest request.
  ROUTES.forEach((route, index) => {
    it.prop(
      { segments: fc.array(pathSegment, { minLength: 3, maxLength: 3 }), query: fc.option(queryString, { freq: 2 }), headers, body: rawBody(route.path) },
      { numRuns: RUNS, seed: SEED + index },
    )(
      `${route.method.toUpperCase()} ${route.path}: never a 5xx, errors in ЕСОЗ JSON, no event unless accepted`,
      async ({ segments, query, headers: h, body }) => {
        let n = 0;
        const path = route.path.replace(/:[a-z_]+/g, () => segments[n++]!) + (query === null ? '' : `?${query}`);
        const before = await sideEffects(t);
        const res = await send(route, path, h, body);
        const after = await sideEffects(t);
        const context = `${route.method.toUpperCase()} ${path} → ${res.status} ${res.text.slice(0, 300)}`;

        expect({ context, serverError: res.status >= 500 }).toEqual({ context, serverError: false });
        expect(res.status).not.toBe(304);
        if (res.status >= 400) {
          const parsed = errorEnvelopeSchema.safeParse(res.body);
          expect({ context, issues: parsed.success ? [] : parsed.error.issues }).toEqual({ context, issues: [] });
          expect(res.body.meta.code).toBe(res.status);
          expect({ context, events: after.events, pendingJobs: after.pendingJobs }).toEqual({
            context,
            events: before.events,
            pendingJobs: before.pendingJobs,
          });
        }
        if (route.method === 'get') expect(after.events).toBe(before.events);
      },
      TIMEOUT_MS,
    );
  });
});
