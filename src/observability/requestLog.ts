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

export function requestLog(logger: Logger, observe?: (method: string, route: string, status: number, seconds: number) => void): RequestHandler {
  // Written by hand, not pino-http: that builds a child logger per request (a third of the logging cost)
  // for a line we write once. Only the fields below are ever logged (never headers or bodies).
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const done = (finished: boolean) => () => {
      res.off('finish', onFinish);
      res.off('close', onClose);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeTemplateOf(req);
      if (finished) observe?.(req.method, route, res.statusCode, seconds);
      const locals = localsOf(res);
      const principal = locals.principal as Principal | undefined;
      const entry = {
        request_id: String(locals.requestId ?? ''),
        req: { method: req.method, path: (req.originalUrl ?? req.url ?? '').split('?')[0] },
        res: { status: res.statusCode },
        ms: Math.round(seconds * 1000),
        route,
        ...(principal ? { user_id: principal.userId, legal_entity_id: principal.legalEntityId } : {}),
        ...(finished ? {} : { aborted: true }),
      };
      if (res.statusCode >= 500) logger.error(entry, 'http request');
      else logger.info(entry, 'http request');
    };
    const onFinish = done(true);
    const onClose = done(false);
    res.on('finish', onFinish);
    res.on('close', onClose);
    next();
  };
}
