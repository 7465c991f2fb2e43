/**
 * Conditional requests are not supported: the API sends no ETag or Last-Modified, so a validator
 * the client sends cannot match anything it saw. Express would still answer `If-None-Match: *` with an
 * empty 304 (its freshness check treats `*` as a match); dropping the headers makes every GET a full 200.
 */
import type { NextFunction, Request, Response } from 'express';

const CONDITIONAL_HEADERS = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range'] as const;

export function ignoreConditionalHeaders(req: Request, _res: Response, next: NextFunction): void {
  for (const header of CONDITIONAL_HEADERS) delete req.headers[header];
  next();
}
