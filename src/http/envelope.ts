/** The ЕСОЗ response envelope (spec §0.1–0.2): `{meta, data, paging}` or `{meta, error}`. */
import type { Request, Response } from 'express';
import type { EsozError } from '../domain/shared/esozError.js';

export type Paging = { page: number; page_size: number; total_entries: number; total_pages: number };

/** The configured public base URL (PUBLIC_URL), set by createHttpApp: never the request's Host header. */
export const PUBLIC_URL_SETTING = 'public url';
const publicUrlOf = (req: Request): string => {
  const publicUrl = req.app.get(PUBLIC_URL_SETTING) as (() => string) | undefined;
  return publicUrl ? publicUrl() : 'http://localhost';
};

/** The envelope's `meta`: one definition for Express's answers and the requests answered in front of it (app.ts). */
export const envelopeMeta = (publicUrl: string, path: string, code: number, type: 'object' | 'list', requestId: string, idempotencyKey?: string) => ({
  code,
  url: `${publicUrl}${path}`,
  type,
  request_id: requestId,
  ...(idempotencyKey ? { idempotency_key: idempotencyKey } : {}),
});

const meta = (req: Request, res: Response, code: number, type: 'object' | 'list') =>
  envelopeMeta(publicUrlOf(req), req.originalUrl, code, type, String(res.locals.requestId ?? ''), res.locals.idempotencyKey as string | undefined);

export function sendData(req: Request, res: Response, code: number, data: unknown, paging?: Paging): void {
  const type = Array.isArray(data) ? 'list' : 'object';
  res.status(code).json({ meta: meta(req, res, code, type), data, ...(paging ? { paging } : {}) });
}

export function sendError(req: Request, res: Response, error: EsozError): void {
  // RFC 6750 §3: a 401 names the scheme; a token that was sent and refused is "invalid_token" (the reason stays in the log).
  if (error.status === 401) res.set('WWW-Authenticate', req.get('authorization') === undefined ? 'Bearer' : 'Bearer error="invalid_token"');
  res.status(error.status).json({ meta: meta(req, res, error.status, 'object'), error: error.toBody() });
}

export const paging = (page: number, pageSize: number, total: number): Paging => ({
  page,
  page_size: pageSize,
  total_entries: total,
  total_pages: Math.ceil(total / pageSize),
});
