/** The ЕСОЗ response envelope (spec §0.1–0.2): `{meta, data, paging}` or `{meta, error}`. */
import type { Request, Response } from 'express';
import type { EsozError } from '../domain/shared/esozError.js';

export type Paging = { page: number; page_size: number; total_entries: number; total_pages: number };

const meta = (req: Request, res: Response, code: number, type: 'object' | 'list') => ({
  code,
  url: `${req.protocol}://${req.get('host') ?? 'localhost'}${req.originalUrl}`,
  type,
  request_id: String(res.locals.requestId ?? ''),
});

export function sendData(req: Request, res: Response, code: number, data: unknown, paging?: Paging): void {
  const type = Array.isArray(data) ? 'list' : 'object';
  res.status(code).json({ meta: meta(req, res, code, type), data, ...(paging ? { paging } : {}) });
}

export function sendError(req: Request, res: Response, error: EsozError): void {
  res.status(error.status).json({ meta: meta(req, res, error.status, 'object'), error: error.toBody() });
}

export const paging = (page: number, pageSize: number, total: number): Paging => ({
  page,
  page_size: pageSize,
  total_entries: total,
  total_pages: Math.ceil(total / pageSize),
});
