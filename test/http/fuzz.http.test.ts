/**
 * Property-based fuzzing of every route (listed from the router itself): whatever path, query,
 * headers and body arrive, the answer is never a 5xx, a 4xx is ЕСОЗ error JSON with meta.url on
 * PUBLIC_URL, and the event log (and the job queue) only changes for a request that was accepted,
 * and a caller outside the route's class (src/http/callerClasses.ts) is refused. Input classes: bytes
 * that are not UTF-8 in bodies, oversized NDJSON lines for the reference batches, range overflow of
 * paging/checkpoint parameters (a property per route).
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
import {
  FUZZ_ADDITIONAL_LICENSE,
  FUZZ_REFERENCE_BATCH_LIMIT_BYTES,
  headers,
  INVALID_UTF8,
  jsonBody,
  ndjsonBody,
  overflowQuery,
  pathSegment,
  queryString,
  rawBody,
  validBody,
  withBytesInString,
  type FuzzHeaders,
  type RawBody,
} from '../support/fuzzArbitraries.js';
import { MIS_SCOPES } from '../../src/auth/scopes.js';
import { callersOf } from '../../src/http/openapi.js';
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
/** Cases of the range-overflow property per route and backend (a fraction of RUNS: one class of input only). */
const OVERFLOW_RUNS = Math.max(10, Math.ceil(RUNS / 6));
/** Routes with a JSON body of their own (the invalid-UTF-8 property sends theirs). */
const validBodyRoute = (route: Route) => validBody(route.path) !== null;

describe.each(testBackends())('fuzzing every route on %s', (backend) => {
  let t: TestServer;
  const tokens: Record<'good' | 'read-only' | 'not-employed', string> = { good: '', 'read-only': '', 'not-employed': '' };
  beforeAll(async () => {
    const data = licenseReferenceData();
    const primary = data.licenses.find((license) => license.id === ids.primaryLicense)!;
    data.licenses.push({ ...primary, id: FUZZ_ADDITIONAL_LICENSE, is_primary: false, type: 'MSP', license_number: 'FUZZ-1' });
    t = await startTestServer({ backend, data, env: { PUBLIC_URL, REFERENCE_BATCH_BODY_LIMIT: `${FUZZ_REFERENCE_BATCH_LIMIT_BYTES}b` } });
    // No job runs: every event appended during a case is the case's own, synchronous one.
    await t.server.worker.stop();
    tokens.good = await t.token();
    tokens['read-only'] = await t.token({ scope: 'license:read' });
    tokens['not-employed'] = await t.token({ sub: ids.dismissedUser, scope: MIS_SCOPES.join(' ') });
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
    // Every route has its caller class in the route table (the invariant above reads it).
    expect(ROUTES.filter((route) => callersOf(route.method, route.path) === undefined)).toEqual([]);
  });

  /** Caller classes: a dismissed employee's token never gets a 2xx where the class is checked at the request. */
  const refusedAtOnce = (route: Route): boolean => {
    const callers = callersOf(route.method, route.path);
    return callers !== undefined && (callers.class === 'auditor' || (callers.class === 'employee' && callers.employment !== 'in_job'));
  };

  /** The invariants of every case: no 5xx, no 304, errors in ЕСОЗ JSON on PUBLIC_URL, no event or job unless accepted, callers in class. */
  async function check(route: Route, path: string, h: FuzzHeaders, body: RawBody): Promise<void> {
    const before = await sideEffects(t);
    const res = await send(route, path, h, body);
    const after = await sideEffects(t);
    const context = `${route.method.toUpperCase()} ${path} (${h.auth}) → ${res.status} ${res.text.slice(0, 300)}`;

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
    if (h.auth === 'not-employed' && refusedAtOnce(route)) expect({ context, refused: res.status >= 400 }).toEqual({ context, refused: true });
  }

  const fill = (route: Route, segments: string[]) => {
    let n = 0;
    return route.path.replace(/:[a-z_]+/g, () => segments[n++]!);
  };
  const isBatch = (route: Route) => route.method === 'post' && route.path.startsWith('/api/admin/reference');
  /** What a route's body may be: JSON (or garbage), and NDJSON batches (oversized lines included) for the reference batch routes. */
  const bodyOf = (route: Route): fc.Arbitrary<RawBody> => (isBatch(route) ? fc.oneof(rawBody(route.path), ndjsonBody, ndjsonBody) : rawBody(route.path));

  // One property per route, so a failure names it; fast-check shrinks it to the smallest request.
  ROUTES.forEach((route, index) => {
    it.prop(
      { segments: fc.array(pathSegment, { minLength: 3, maxLength: 3 }), query: fc.option(queryString, { freq: 2 }), headers, body: bodyOf(route) },
      { numRuns: RUNS, seed: SEED + index },
    )(
      `${route.method.toUpperCase()} ${route.path}: never a 5xx, errors in ЕСОЗ JSON, no event unless accepted, callers outside the class refused`,
      async ({ segments, query, headers: h, body }) => check(route, fill(route, segments) + (query === null ? '' : `?${query}`), h, body),
      TIMEOUT_MS,
    );
  });

  /** Range overflow of paging and checkpoint parameters (page, page_size, limit, after): a 4xx, never a 5xx. */
  const good: FuzzHeaders = { auth: 'good', idempotencyKey: null, ifNoneMatch: null, host: null, requestId: null, origin: null };
  ROUTES.forEach((route, index) => {
    const name = `${route.method.toUpperCase()} ${route.path}`;
    it(
      `${name}: range overflow in paging/checkpoint parameters is never a 5xx`,
      async () => {
        const cases = fc.record({ segments: fc.array(pathSegment, { minLength: 3, maxLength: 3 }), query: overflowQuery });
        const noBody: RawBody = { bytes: null, contentType: null, contentEncoding: null };
        await fc.assert(
          fc.asyncProperty(cases, async ({ segments, query }) => check(route, `${fill(route, segments)}?${query}`, good, noBody)),
          { numRuns: OVERFLOW_RUNS, seed: SEED + 1000 + index },
        );
      },
      TIMEOUT_MS,
    );
  });

  /** A JSON body with bytes that are not UTF-8 is refused with 400 request_malformed, never rewritten to U+FFFD. */
  const jsonRoutes = ROUTES.filter((route) => route.method !== 'get' && !isBatch(route) && validBodyRoute(route));
  it(
    'a JSON body with bytes that are not UTF-8 is refused with 400 request_malformed',
    async () => {
      const cases = fc.record({
        routeAndDocument: fc.constantFrom(...jsonRoutes).chain((route) => fc.tuple(fc.constant(route), jsonBody(route.path))),
        bytes: fc.constantFrom(...INVALID_UTF8),
        nth: fc.nat(),
      });
      await fc.assert(
        fc.asyncProperty(cases, async ({ routeAndDocument: [route, document], bytes, nth }) => {
          const json = Buffer.from(JSON.stringify(document) ?? 'null');
          const res = await send(route, fill(route, [ids.patient, FUZZ_ADDITIONAL_LICENSE, FUZZ_ADDITIONAL_LICENSE]), good, {
            bytes: withBytesInString(json, bytes, nth),
            contentType: 'application/json',
            contentEncoding: null,
          });
          expect([res.status, res.body?.error?.type]).toEqual([400, 'request_malformed']);
        }),
        { numRuns: Math.max(10, Math.ceil(RUNS / 4)), seed: SEED + 2000 },
      );
    },
    TIMEOUT_MS,
  );
});
