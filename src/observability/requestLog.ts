/**
 * One log line per request, and the HTTP duration metric. Only chosen fields are
 * logged (serializers pick them): request id, method, path, route template, status, duration, user and
 * legal entity of the token — never headers (Authorization) nor bodies (signed payloads).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import type { Principal } from '../auth/accessTokens.js';
import type { Logger } from '../logger.js';

/** The route template (`/api/licenses/:id`), never the concrete path: bounded metric labels, no ids. */
export const routeTemplateOf = (req: IncomingMessage): string => {
  const { route, baseUrl } = req as Request;
  return route && typeof route.path === 'string' ? `${baseUrl ?? ''}${route.path}` : 'unmatched';
};

const localsOf = (res: ServerResponse): Record<string, unknown> => (res as Response).locals ?? {};

/** What a request's log line names besides method, path and status. */
export type RequestFacts = { requestId: string; route: string; principal: Principal | undefined };

/**
 * Logs the request once it finished (or was aborted) and records its duration; returns a function that
 * forgets it (a request handed on to another handler that logs it itself).
 */
export function logWhenDone(
  logger: Logger,
  observe: ((method: string, route: string, status: number, seconds: number) => void) | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  factsOf: () => RequestFacts,
  started: bigint = process.hrtime.bigint(),
): () => void {
  const done = (finished: boolean) => () => {
    forget();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const { requestId, route, principal } = factsOf();
    if (finished) observe?.(req.method ?? '', route, res.statusCode, seconds);
    const entry = {
      request_id: requestId,
      req: { method: req.method, path: ((req as Partial<Request>).originalUrl ?? req.url ?? '').split('?')[0] },
      res: { status: res.statusCode },
      ms: Math.round(seconds * 1000),
      route,
      ...(principal ? { user_id: principal.userId, legal_entity_id: principal.legalEntityId } : {}),
      ...(finished ? {} : { aborted: true }),
    };
    // Health probes (a balancer's, every few seconds) at debug: a readiness outage is logged once
    // per change of state by the route itself (http/health.ts), not once per probe.
    if (entry.req.path?.startsWith('/health/')) logger.debug(entry, 'http request');
    else if (res.statusCode >= 500) logger.error(entry, 'http request');
    else logger.info(entry, 'http request');
  };
  const onFinish = done(true);
  const onClose = done(false);
  const forget = () => {
    res.off('finish', onFinish);
    res.off('close', onClose);
  };
  res.on('finish', onFinish);
  res.on('close', onClose);
  return forget;
}

export function requestLog(logger: Logger, observe?: (method: string, route: string, status: number, seconds: number) => void): RequestHandler {
  // Written by hand, not pino-http: that builds a child logger per request (a third of the logging cost)
  // for a line we write once. Only the fields below are ever logged (never headers or bodies).
  return (req, res, next) => {
    logWhenDone(logger, observe, req, res, () => {
      const locals = localsOf(res);
      return { requestId: String(locals.requestId ?? ''), route: routeTemplateOf(req), principal: locals.principal as Principal | undefined };
    });
    next();
  };
}
