/**
 * The express 5 frame every endpoint shares: request id, CORS (only when configured), the input
 * boundary (request line and JSON text), JSON body with a size limit, content-type check, access token
 * + scope, idempotency keys, ЕСОЗ envelope and error JSON for every answer (never a stack trace or SQL).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response, type Router } from 'express';
import { randomUUID } from 'node:crypto';
import { requireScope, type Principal, type TokenVerifier } from '../auth/accessTokens.js';
import { DEFAULT_MESSAGES, EsozError, internalError, notFound, serviceUnavailable, type EsozErrorBody } from '../domain/shared/esozError.js';
import { isStoreUnavailable } from '../shared/storeUnavailable.js';
import { ProjectionTimeoutError } from '../projections/projectionRunner.js';
import type { Logger } from '../logger.js';
import { ignoreConditionalHeaders } from './conditionalRequests.js';
import { cors } from './cors.js';
import { envelopeMeta, PUBLIC_URL_SETTING, sendError } from './envelope.js';
import { readIdempotencyKey, type idempotency } from './idempotency.js';
import { checkBodyBytes, guardJsonBody, guardRequestLine, jsonBodyError, verifyJsonBytes } from './inputGuard.js';
import { logWhenDone, requestLog } from '../observability/requestLog.js';
import { enforceCallers, type CallerFacts, type Callers } from './callerClasses.js';

/** The scope a route requires: one; any one of several (the refusal names the first); null: any valid token. */
export type RequiredScope = string | readonly string[] | null;
export type Authorize = (scope: RequiredScope) => (req: Request, res: Response, next: NextFunction) => Promise<void>;

/** 403 naming the missing scope (of several, the first) unless the token has one of them. */
function checkScope(principal: Principal, scope: RequiredScope): void {
  if (scope === null) return;
  if (typeof scope === 'string') return requireScope(principal, scope);
  if (!scope.some((one) => principal.scopes.has(one))) requireScope(principal, scope[0]!);
}

/**
 * Caller classes (src/http/callerClasses.ts): who may call each operation, looked up by method and
 * route template; checked right after the scope, in `authorize` and in the fast lanes alike.
 */
export type CallerClassCheck = {
  of(method: string, route: string): Callers | undefined;
  facts: CallerFacts;
};

/** A route that declares no caller class is refused (fail closed): the route table names every operation. */
async function checkCallers(check: CallerClassCheck | undefined, method: string, route: string, principal: Principal, params: Record<string, string>) {
  if (!check) return;
  const callers = check.of(method, route);
  if (!callers) throw new Error(`${method.toUpperCase()} ${route} declares no caller class`);
  await enforceCallers(callers, principal, params, check.facts);
}

export const principalOf = (res: Response): Principal => {
  const principal = res.locals.principal as Principal | undefined;
  if (!principal) throw new Error('Route is missing authorize()');
  return principal;
};

export const requestIdOf = (res: Response): string => String(res.locals.requestId);

/** body-parser / raw-body / router errors carry a `type` and an HTTP `status` (http-errors). */
type BodyParserError = Error & { type?: string; status?: number };

const REQUEST_ID = /^[\w.:-]{1,200}$/;

/**
 * Headers of every answer: no content sniffing anywhere; and no API answer (patients' dispenses,
 * licences, audit history, jobs — and errors, which echo ids) kept by a browser or a shared cache.
 */
export const hygieneHeaders = (path: string): Array<[string, string]> =>
  path === '/api' || path.startsWith('/api/')
    ? [
        ['X-Content-Type-Options', 'nosniff'],
        ['Cache-Control', 'no-store'],
      ]
    : [['X-Content-Type-Options', 'nosniff']];

const routers = new WeakMap<object, Router>();

/** The method and path of every route the app's router has (the OpenAPI test compares them to the document). */
export function registeredRoutes(app: object): Array<{ method: string; path: string }> {
  const router = routers.get(app);
  if (!router) return [];
  return router.stack.flatMap((layer) => {
    const route = layer.route as { path?: unknown; methods?: Record<string, boolean> } | undefined;
    if (!route || typeof route.path !== 'string') return [];
    const path = route.path;
    return Object.keys(route.methods ?? {})
      .filter((method) => route.methods?.[method])
      .map((method) => ({ method, path }));
  });
}

export function createHttpApp({
  logger,
  verifier,
  bodyLimit = '1mb',
  ndjsonBatches,
  publicUrl = () => 'http://localhost',
  corsAllowedOrigins = [],
  idempotent,
  routes,
  serviceRoutes,
  observeHttp,
  fastLanes,
  callerClasses,
}: {
  logger: Logger;
  verifier: TokenVerifier;
  bodyLimit?: string;
  /** POSTs under `pathPrefix` may send application/x-ndjson, up to `limit`. */
  ndjsonBatches?: { pathPrefix: string; limit: string };
  /** Base of `meta.url` (PUBLIC_URL); a function because a PORT=0 server learns its port on listen. */
  publicUrl?: () => string;
  corsAllowedOrigins?: readonly string[];
  /** X-Idempotency-Key handling; without it the header is only validated and echoed. */
  idempotent?: ReturnType<typeof idempotency>;
  routes: (router: Router, authorize: Authorize) => void;
  /** Health, metrics, index, OpenAPI and docs: registered on the same router, before the API routes. */
  serviceRoutes?: (router: Router, authorize: Authorize) => void;
  /** Records each request's duration (the Prometheus histogram). */
  observeHttp?: (method: string, route: string, status: number, seconds: number) => void;
  /** Requests answered in front of Express when plain (see answerFirst); the routes give them (routes.ts fastLanes). */
  fastLanes?: FastLane[];
  /** Who may call each operation (the server passes the route table's); without it only scopes are checked. */
  callerClasses?: CallerClassCheck;
}) {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.set(PUBLIC_URL_SETTING, publicUrl);

  app.use((req, res, next) => {
    const given = req.get('x-request-id');
    const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
    res.locals.requestId = requestId;
    res.set('x-request-id', requestId);
    for (const [name, value] of hygieneHeaders(req.path)) res.set(name, value);
    next();
  });
  app.use(requestLog(logger, observeHttp));
  app.use(cors(corsAllowedOrigins));
  app.use(ignoreConditionalHeaders);
  app.use(guardRequestLine);
  app.use(readIdempotencyKey);

  // A body must be JSON; a PATCH without a body (stop) is fine.
  app.use((req, res, next) => {
    const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
    const ndjson = ndjsonBatches && req.method === 'POST' && req.path.startsWith(ndjsonBatches.pathPrefix) && req.is('application/x-ndjson');
    if (hasBody && ['POST', 'PUT', 'PATCH'].includes(req.method) && !req.is('application/json') && !ndjson) {
      sendError(req, res, new EsozError(415, 'content_type_invalid', DEFAULT_MESSAGES.content_type_invalid));
      return;
    }
    next();
  });
  // verify: the bytes must be valid in their charset (never rewritten to U+FFFD), else 400 as malformed JSON.
  app.use(express.json({ limit: bodyLimit, strict: false, verify: verifyJsonBytes }));
  // NDJSON batches (reference data) under their own, larger limit; read as text, split by their route.
  if (ndjsonBatches) app.use(ndjsonBatches.pathPrefix, express.text({ type: 'application/x-ndjson', limit: ndjsonBatches.limit, verify: verifyJsonBytes }));
  app.use(guardJsonBody);

  const authorize: Authorize = (scope) => async (req, res, next) => {
    try {
      const principal = await verifier.verify(req.get('authorization'));
      checkScope(principal, scope);
      const route = (req.route as { path?: unknown } | undefined)?.path;
      await checkCallers(callerClasses, req.method, typeof route === 'string' ? route : req.path, principal, paramsOf(req));
      res.locals.principal = principal;
      if (idempotent) await idempotent(req, res, next, { userId: principal.userId, legalEntityId: principal.legalEntityId });
      else next();
    } catch (error) {
      if (error instanceof EsozError && error.status === 401)
        logger.info({ request_id: res.locals.requestId, reason: (error.cause as Error | undefined)?.message }, 'access token refused');
      next(error);
    }
  };

  const router = express.Router();
  serviceRoutes?.(router, authorize);
  routes(router, authorize);
  routers.set(app, router);
  // OPTIONS never reaches the router: its automatic 200 with an Allow header would need no token.
  // (An allowed CORS preflight was answered above.) It gets the 404 of a method a path does not serve.
  app.use((req, res, next) => (req.method === 'OPTIONS' ? next() : router(req, res, next)));

  app.use((req, res) => sendError(req, res, notFound('Route not found')));

  /** The ЕСОЗ error for what a handler threw (logged when it is the server's); `retryAfter` for an unreachable store. */
  const errorAnswer = (error: unknown, requestId: unknown): { error: EsozError; retryAfter?: true } => {
    if (error instanceof EsozError) return { error };
    const parserError = error as BodyParserError;
    switch (parserError?.type) {
      case 'entity.parse.failed':
        return {
          error: new EsozError(400, 'request_malformed', DEFAULT_MESSAGES.request_malformed, [
            { entry_type: 'request', rules: [{ rule: 'json', description: 'invalid JSON', params: [] }] },
          ]),
        };
      case 'entity.too.large':
        return { error: new EsozError(413, 'request_entity_too_large', `Request body is larger than ${bodyLimit}`) };
      case 'encoding.unsupported':
      case 'charset.unsupported':
        return { error: new EsozError(415, 'content_type_invalid', DEFAULT_MESSAGES.content_type_invalid) };
    }
    if (error instanceof ProjectionTimeoutError) {
      // A sync method's change is committed but its read model did not show it in time (a projection
      // behind, e.g. held back by a long transaction on the server): not the client's fault, and
      // retrying the read (GET) will show it; the answer must not be an unexplained 500.
      logger.warn({ err: error, request_id: requestId }, 'read model behind the change');
      return { error: serviceUnavailable(), retryAfter: true };
    }
    if (isStoreUnavailable(error)) {
      // A restart, failover or network blip: the request changed nothing it can't retry.
      logger.warn({ err: error, request_id: requestId }, 'store unavailable');
      return { error: serviceUnavailable(), retryAfter: true };
    }
    // Any other client error of the body reader (a broken gzip/deflate stream, an aborted or
    // short body) or of the router (an undecodable parameter): the request, not the server, is at fault.
    const status = parserError?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      logger.info({ request_id: requestId, reason: parserError.message }, 'undecodable request');
      if (status === 413) return { error: new EsozError(413, 'request_entity_too_large', `Request body is larger than ${bodyLimit}`) };
      if (status === 415) return { error: new EsozError(415, 'content_type_invalid', DEFAULT_MESSAGES.content_type_invalid) };
      return {
        error: new EsozError(400, 'request_malformed', DEFAULT_MESSAGES.request_malformed, [
          { entry_type: 'request', rules: [{ rule: 'json', description: 'the request body could not be decoded', params: [] }] },
        ]),
      };
    }
    logger.error({ err: error, request_id: requestId }, 'unhandled error');
    return { error: internalError() };
  };
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const answer = errorAnswer(error, res.locals.requestId);
    if (answer.retryAfter) res.set('retry-after', '1');
    return sendError(req, res, answer.error);
  });

  // With CORS configured every answer may carry its headers: Express answers everything then.
  if (fastLanes && corsAllowedOrigins.length === 0)
    answerFirst(app, fastLanes, { logger, verifier, bodyLimit, publicUrl, observeHttp, errorAnswer, callerClasses });
  return app;
}

/** A route's answer: status, `data` of the envelope, headers of its own. */
export type LaneAnswer = { code: number; data: unknown; headers?: Array<[string, string]> };

/** A request answered in front of Express when it is plain (see answerFirst). */
export type FastLane = {
  /** A POST lane takes a JSON body (read here as express.json reads it); the others none. */
  method: 'GET' | 'PATCH' | 'POST';
  /** The whole request target (no query string, no percent-encoding): its groups are the path parameters. */
  path: RegExp;
  /** The route template (log line and metric). */
  route: string;
  /** The scope `authorize` checks (null: any valid token). */
  scope: string | null;
  answer(principal: Principal, params: string[], facts: { requestId: string; prefer: string | undefined; body: unknown }): Promise<LaneAnswer>;
};

/** A JSON body exactly as express.json reads it, with nothing to convert: utf-8, not compressed. */
const PLAIN_JSON = /^application\/json(\s*;\s*charset="?utf-8"?)?$/i;
/** The largest body a lane reads (with BODY_LIMIT, if smaller); bigger ones go to Express. */
const MAX_LANE_BODY = 64 * 1024;
const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 * 1024 };
/** BODY_LIMIT ('512kb', '1mb') in bytes, as express.json counts it; 0 when it reads otherwise. */
const limitBytes = (limit: string): number => {
  const match = /^(\d+)(b|kb|mb)$/i.exec(limit);
  return match ? Number(match[1]) * UNITS[match[2]!.toLowerCase()]! : 0;
};

/** The body's bytes; rejects as raw-body does when the request is aborted or broken (a 400 of the error handler). */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const fail = () => reject(Object.assign(new Error('request aborted'), { status: 400, type: 'request.aborted' }));
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('aborted', fail);
    req.on('error', fail);
  });
}

/**
 * body-parser's json parse (strict: false): iconv-lite's utf-8 drops a BOM; an empty body is {}; invalid
 * UTF-8 is malformed JSON (as express.json's verify).
 */
function parseJsonBody(bytes: Buffer): unknown {
  checkBodyBytes(bytes);
  const text = bytes.toString('utf8').replace(/^\uFEFF/, '');
  if (text.length === 0) return {};
  try {
    return JSON.parse(text);
  } catch (error) {
    throw Object.assign(new Error((error as Error).message), { status: 400, type: 'entity.parse.failed' });
  }
}

type Handle = (req: IncomingMessage, res: ServerResponse, callback?: (error?: unknown) => void) => void;

/**
 * Every command is a POST/PATCH and then job GETs (an MIS polls its outcome), and Express's setup of a
 * request alone costs ~180 µs of CPU here (it swaps the prototypes of req and res, which slows node's
 * own HTTP code after it; bench -- http: a first middleware answering at once 261 µs, node:http 84 µs).
 * A plain request of a lane (no body, no idempotency key, no query string or percent-encoding) with a
 * good token and scope is answered here with what the frame and the route give it: request id, log
 * line and metric, envelope and headers, errors as the error handler answers them. Anything else — and
 * a refused token or scope, before anything was done — goes to Express, which answers it from the
 * start as before.
 */
function answerFirst(
  app: Express,
  lanes: FastLane[],
  {
    logger,
    verifier,
    publicUrl,
    observeHttp,
    errorAnswer,
    bodyLimit,
    callerClasses,
  }: {
    logger: Logger;
    verifier: TokenVerifier;
    bodyLimit: string;
    publicUrl: () => string;
    observeHttp: ((method: string, route: string, status: number, seconds: number) => void) | undefined;
    errorAnswer: (error: unknown, requestId: unknown) => { error: EsozError; retryAfter?: true };
    callerClasses: CallerClassCheck | undefined;
  },
) {
  // Express types leave out `handle`, the function the app calls for every request.
  const expressApp = app as unknown as { handle: Handle };
  const expressHandle: Handle = expressApp.handle.bind(app);

  /** sendData / sendError and res.json, byte for byte (no idempotency key: such requests go to Express). */
  function send(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    code: number,
    payload: { data: unknown } | { error: EsozErrorBody },
    headers: Array<[string, string]>,
  ) {
    const type = 'data' in payload && Array.isArray(payload.data) ? 'list' : 'object';
    const text = JSON.stringify({ meta: envelopeMeta(publicUrl(), req.url ?? '', code, type, requestId), ...payload });
    res.statusCode = code;
    res.setHeader('x-request-id', requestId);
    for (const [name, value] of hygieneHeaders(req.url ?? '')) res.setHeader(name, value);
    for (const [name, value] of headers) res.setHeader(name === 'vary' ? 'Vary' : name, value);
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.end(text);
  }

  async function answered(req: IncomingMessage, res: ServerResponse, lane: FastLane, params: string[]): Promise<boolean> {
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    let principal: Principal | undefined;
    const forget = logWhenDone(logger, observeHttp, req, res, () => ({ requestId, route: lane.route, principal }));
    try {
      principal = await verifier.verify(req.headers.authorization);
      if (lane.scope) requireScope(principal, lane.scope);
      // The caller class as authorize checks it; a refusal (or a failed lookup) is Express's to answer.
      const names = [...lane.route.matchAll(/:(\w+)/g)].map(([, name]) => name!);
      const named = Object.fromEntries(names.map((name, i) => [name, params[i] ?? '']));
      await checkCallers(callerClasses, lane.method, lane.route, principal, named);
    } catch {
      forget();
      return false;
    }
    const prefer = req.headers.prefer;
    try {
      // As the frame: the body is read and checked after the token here, but every body error comes
      // before anything the route does, which is all that a good token lets through.
      const body = lane.method === 'POST' ? parseJsonBody(await readBody(req)) : undefined;
      const bodyError = body === undefined ? null : jsonBodyError(body);
      if (bodyError) throw bodyError;
      const answer = await lane.answer(principal, params, { requestId, prefer: typeof prefer === 'string' ? prefer : undefined, body });
      send(req, res, requestId, answer.code, { data: answer.data }, answer.headers ?? []);
    } catch (error) {
      const { error: esozError, retryAfter } = errorAnswer(error, requestId);
      send(req, res, requestId, esozError.status, { error: esozError.toBody() }, retryAfter ? [['retry-after', '1']] : []);
    }
    return true;
  }

  const maxBody = Math.min(MAX_LANE_BODY, limitBytes(bodyLimit));
  expressApp.handle = (req, res, callback) => {
    const headers = req.headers;
    const length = headers['content-length'] ?? '0';
    const plain = callback === undefined && headers['x-idempotency-key'] === undefined && headers['transfer-encoding'] === undefined;
    // No body; or a JSON body of a known, small length, as is (a POST lane).
    const withBody =
      plain &&
      /^[1-9]\d{0,5}$/.test(length) &&
      Number(length) <= maxBody &&
      PLAIN_JSON.test(headers['content-type'] ?? '') &&
      headers['content-encoding'] === undefined;
    for (const lane of plain && (length === '0' || withBody) ? lanes : []) {
      const fits = lane.method === req.method && (lane.method === 'POST') === withBody;
      const match = fits ? lane.path.exec(req.url ?? '') : null;
      if (!match) continue;
      answered(req, res, lane, match.slice(1)).then(
        (done) => done || expressHandle(req, res),
        () => expressHandle(req, res),
      );
      return;
    }
    expressHandle(req, res, callback);
  };
}

/** The route's path parameters as strings (express 5 types wildcard params as arrays). */
const paramsOf = (req: Request): Record<string, string> => Object.fromEntries(Object.keys(req.params).map((name) => [name, pathParam(req, name)]));

/** A named path parameter (express 5 types wildcard params as arrays, named ones are strings). */
export const pathParam = (req: Request, name: string): string => {
  const value = req.params[name];
  return Array.isArray(value) ? value.join('/') : String(value ?? '');
};
