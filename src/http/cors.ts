/**
 * CORS only for the configured origins (CORS_ALLOWED_ORIGINS). A preflight from an allowed origin is
 * answered here; every other OPTIONS request goes on (app.ts keeps it from the router, whose automatic
 * 200 with an Allow header needs no token) and is answered like any method a path does not serve: 404.
 */
import type { NextFunction, Request, Response } from 'express';

const ALLOWED_METHODS = 'GET, POST, PATCH';
const ALLOWED_HEADERS = 'Authorization, Content-Type, Content-Encoding, X-Request-ID, X-Idempotency-Key';
// Beyond the safelisted ones: what a browser MIS needs to read (the created licence, when to retry, why a 401).
const EXPOSED_HEADERS = 'X-Request-ID, Location, Retry-After, WWW-Authenticate';
const PREFLIGHT_MAX_AGE_SECONDS = '600';

export function cors(allowedOrigins: readonly string[]) {
  const allowed = new Set(allowedOrigins);
  return (req: Request, res: Response, next: NextFunction): void => {
    const origin = req.get('origin');
    const permitted = origin !== undefined && allowed.has(origin);
    if (allowed.size > 0) res.vary('Origin');
    if (permitted) {
      res.set('access-control-allow-origin', origin);
      res.set('access-control-expose-headers', EXPOSED_HEADERS);
    }
    if (req.method !== 'OPTIONS') return next();
    if (permitted && req.get('access-control-request-method')) {
      res.set('access-control-allow-methods', ALLOWED_METHODS);
      res.set('access-control-allow-headers', ALLOWED_HEADERS);
      res.set('access-control-max-age', PREFLIGHT_MAX_AGE_SECONDS);
      res.status(204).end();
      return;
    }
    next();
  };
}
