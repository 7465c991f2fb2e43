/**
 * One log line per request through pino-http, and the HTTP duration metric. Only chosen fields are
 * logged (serializers pick them): request id, method, path, route template, status, duration, user and
 * legal entity of the token — never headers (Authorization) nor bodies (signed payloads).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import { pinoHttp } from 'pino-http';
import type { Principal } from '../auth/accessTokens.js';
import type { Logger } from '../logger.js';

/** The route template (`/api/licenses/:id`), never the concrete path: bounded metric labels, no ids. */
export const routeTemplateOf = (req: IncomingMessage): string => {
  const { route, baseUrl } = req as Request;
  return route && typeof route.path === 'string' ? `${baseUrl ?? ''}${route.path}` : 'unmatched';
};

const localsOf = (res: ServerResponse): Record<string, unknown> => (res as Response).locals ?? {};

export function requestLog(logger: Logger, observe?: (method: string, route: string, status: number, seconds: number) => void): RequestHandler {
  const log = pinoHttp({
    logger,
    // The frame's request id (X-Request-Id or a new uuid), set by the middleware before this one.
    genReqId: (_req, res) => String(localsOf(res).requestId ?? ''),
    customAttributeKeys: { reqId: 'request_id', responseTime: 'ms' },
    quietReqLogger: true,
    serializers: {
      req: (req: { method?: string; url?: string }) => ({ method: req.method, path: (req.url ?? '').split('?')[0] }),
      res: (res: { statusCode?: number }) => ({ status: res.statusCode }),
    },
    // Belt and braces if a serializer ever widens: these never reach a log line.
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'req.body', 'signed_data'], remove: true },
    customProps: (req, res) => {
      const principal = localsOf(res).principal as Principal | undefined;
      return {
        route: routeTemplateOf(req),
        ...(principal ? { user_id: principal.userId, legal_entity_id: principal.legalEntityId } : {}),
      };
    },
    customSuccessMessage: () => 'http request',
    customErrorMessage: () => 'http request',
    customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? 'error' : 'info'),
  });
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => observe?.(req.method, routeTemplateOf(req), res.statusCode, Number(process.hrtime.bigint() - started) / 1e9));
    log(req, res, next);
  };
}
