/**
 * The express 5 frame every endpoint shares: request id, CORS (only when configured), the input
 * boundary (request line and JSON text), JSON body with a size limit, content-type check, access token
 * + scope, idempotency keys, ЕСОЗ envelope and error JSON for every answer (never a stack trace or SQL).
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { randomUUID } from 'node:crypto';
import { requireScope, type Principal, type TokenVerifier } from '../auth/accessTokens.js';
import { DEFAULT_MESSAGES, EsozError, internalError, notFound, serviceUnavailable } from '../domain/shared/esozError.js';
import { isStoreUnavailable } from '../shared/storeUnavailable.js';
import type { Logger } from '../logger.js';
import { ignoreConditionalHeaders } from './conditionalRequests.js';
import { cors } from './cors.js';
import { PUBLIC_URL_SETTING, sendError } from './envelope.js';
import { readIdempotencyKey, type idempotency } from './idempotency.js';
import { guardJsonBody, guardRequestLine } from './inputGuard.js';
import { requestLog } from '../observability/requestLog.js';

export type Authorize = (scope: string | null) => (req: Request, res: Response, next: NextFunction) => Promise<void>;

export const principalOf = (res: Response): Principal => {
  const principal = res.locals.principal as Principal | undefined;
  if (!principal) throw new Error('Route is missing authorize()');
  return principal;
};

export const requestIdOf = (res: Response): string => String(res.locals.requestId);

/** body-parser / raw-body / router errors carry a `type` and an HTTP `status` (http-errors). */
type BodyParserError = Error & { type?: string; status?: number };

const REQUEST_ID = /^[\w.:-]{1,200}$/;

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
  publicUrl = () => 'http://localhost',
  corsAllowedOrigins = [],
  idempotent,
  routes,
  serviceRoutes,
  observeHttp,
}: {
  logger: Logger;
  verifier: TokenVerifier;
  bodyLimit?: string;
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
    if (hasBody && ['POST', 'PUT', 'PATCH'].includes(req.method) && !req.is('application/json')) {
      sendError(req, res, new EsozError(415, 'content_type_invalid', DEFAULT_MESSAGES.content_type_invalid));
      return;
    }
    next();
  });
  app.use(express.json({ limit: bodyLimit, strict: false }));
  app.use(guardJsonBody);

  const authorize: Authorize = (scope) => async (req, res, next) => {
    try {
      const principal = await verifier.verify(req.get('authorization'));
      if (scope) requireScope(principal, scope);
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

  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (error instanceof EsozError) return sendError(req, res, error);
    const parserError = error as BodyParserError;
    switch (parserError?.type) {
      case 'entity.parse.failed':
        return sendError(
          req,
          res,
          new EsozError(400, 'request_malformed', DEFAULT_MESSAGES.request_malformed, [
            { entry_type: 'request', rules: [{ rule: 'json', description: 'invalid JSON', params: [] }] },
          ]),
        );
      case 'entity.too.large':
        return sendError(req, res, new EsozError(413, 'request_entity_too_large', `Request body is larger than ${bodyLimit}`));
      case 'encoding.unsupported':
      case 'charset.unsupported':
        return sendError(req, res, new EsozError(415, 'content_type_invalid', DEFAULT_MESSAGES.content_type_invalid));
    }
    if (isStoreUnavailable(error)) {
      // A restart, failover or network blip: the request changed nothing it can't retry.
      logger.warn({ err: error, request_id: res.locals.requestId }, 'store unavailable');
      res.set('retry-after', '1');
      return sendError(req, res, serviceUnavailable());
    }
    // Any other client error of the body reader (a broken gzip/deflate stream, an aborted or
    // short body) or of the router (an undecodable parameter): the request, not the server, is at fault.
    const status = parserError?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      logger.info({ request_id: res.locals.requestId, reason: parserError.message }, 'undecodable request');
      if (status === 413) return sendError(req, res, new EsozError(413, 'request_entity_too_large', `Request body is larger than ${bodyLimit}`));
      if (status === 415) return sendError(req, res, new EsozError(415, 'content_type_invalid', DEFAULT_MESSAGES.content_type_invalid));
      return sendError(
        req,
        res,
        new EsozError(400, 'request_malformed', DEFAULT_MESSAGES.request_malformed, [
          { entry_type: 'request', rules: [{ rule: 'json', description: 'the request body could not be decoded', params: [] }] },
        ]),
      );
    }
    logger.error({ err: error, request_id: res.locals.requestId }, 'unhandled error');
    return sendError(req, res, internalError());
  });

  return app;
}

/** A named path parameter (express 5 types wildcard params as arrays, named ones are strings). */
export const pathParam = (req: Request, name: string): string => {
  const value = req.params[name];
  return Array.isArray(value) ? value.join('/') : String(value ?? '');
};
