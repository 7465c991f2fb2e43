/**
 * X-Idempotency-Key (ЕСОЗ: optional, echoed in `meta.idempotency_key`). A POST/PATCH repeated with
 * the same key by the same user of the same legal entity, to the same path with the same body, gets
 * the first answer again (status and body) without running again; the same key for another request
 * is a 422. Without the header nothing changes.
 */
import { z } from 'zod';
import { createHash } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { conflict, EsozError, type InvalidEntry } from '../domain/shared/esozError.js';
import type { IdempotencyKeyId, IdempotencyKeyStore } from '../idempotency/idempotencyKeyStore.js';
import type { Logger } from '../logger.js';
import { sendError } from './envelope.js';

const IDEMPOTENCY_HEADER = 'X-Idempotency-Key';
/** 1–255 printable ASCII characters. */
const KEY_FORMAT = /^[\x20-\x7e]{1,255}$/;
const METHODS = new Set(['POST', 'PATCH', 'PUT']);
const PURGE_EVERY_MS = 60_000;

const headerError = (description: string, message = description) =>
  new EsozError(422, 'validation_failed', message, [
    { entry: IDEMPOTENCY_HEADER, entry_type: 'header', rules: [{ rule: 'format', description, params: [] }] } satisfies InvalidEntry,
  ]);

/** Before everything: a key that is sent must be well-formed; a good one is echoed in meta. */
export function readIdempotencyKey(req: Request, res: Response, next: NextFunction): void {
  const key = req.get(IDEMPOTENCY_HEADER);
  if (key === undefined) return next();
  if (!KEY_FORMAT.test(key)) return sendError(req, res, headerError('must be 1 to 255 printable ASCII characters'));
  res.locals.idempotencyKey = key;
  next();
}

/** What makes a repeat "the same request": method, path and body. */
const requestHash = (req: Request): string =>
  createHash('sha256')
    .update(JSON.stringify([req.method, req.path, req.body ?? null]))
    .digest('hex');

export type IdempotencyOptions = { store: IdempotencyKeyStore; ttlSeconds: number; clock: () => Date; logger: Logger };

const createdEnvelope = z.object({ data: z.object({ id: z.string().regex(/^[\w-]{1,64}$/) }) });
/** The Location of a replayed 201: the collection's path and the created record's id (as the route set it). */
const createdLocation = (collection: string, body: string): string | null => {
  try {
    const parsed = createdEnvelope.safeParse(JSON.parse(body));
    return parsed.success ? `${collection}/${parsed.data.data.id}` : null;
  } catch {
    return null;
  }
};

/** Runs after the token check (the key belongs to the caller), before the route's own work. */
export function idempotency({ store, ttlSeconds, clock, logger }: IdempotencyOptions) {
  let lastPurge = 0;
  const purgeNow = (now: Date) => {
    if (now.getTime() - lastPurge < PURGE_EVERY_MS) return;
    lastPurge = now.getTime();
    store.purgeExpired(now).catch((error: unknown) => logger.warn({ err: error }, 'purging expired idempotency keys failed'));
  };

  return async (req: Request, res: Response, next: NextFunction, caller: { userId: string; legalEntityId: string }): Promise<void> => {
    const key = res.locals.idempotencyKey as string | undefined;
    if (key === undefined || !METHODS.has(req.method)) return next();
    const id: IdempotencyKeyId = { legalEntityId: caller.legalEntityId, userId: caller.userId, key };
    const now = clock();
    purgeNow(now);
    const reservation = await store.reserve(id, requestHash(req), now, ttlSeconds);
    switch (reservation.kind) {
      case 'replay':
        res.set('idempotent-replayed', 'true');
        // Only the status and body are kept: a 201 (a POST to a collection) gets its Location again from the created id.
        if (reservation.status === 201) {
          // A PUT created the record at its own path; a POST in the collection it names.
          const location = req.method === 'PUT' ? req.path : createdLocation(req.path, reservation.body);
          if (location) res.set('Location', location);
        }
        res.status(reservation.status).type('application/json').send(reservation.body);
        return;
      case 'different_request':
        return sendError(
          req,
          res,
          headerError(
            'was already used for a different request',
            `${IDEMPOTENCY_HEADER} was already used for a different request (another body or path); use a new key`,
          ),
        );
      case 'in_progress':
        return sendError(req, res, conflict(`A request with this ${IDEMPOTENCY_HEADER} is still being processed`));
      case 'reserved': {
        // Keep the answer before it leaves, so a repeat that arrives right after it replays it.
        const send = res.json.bind(res);
        res.json = (body: unknown) => {
          const status = res.statusCode;
          // res.json serialises with JSON.stringify too (no json spaces/replacer set): the same bytes.
          const settled = status >= 500 ? store.release(id) : store.complete(id, status, JSON.stringify(body));
          settled
            .catch((error: unknown) => logger.error({ err: error, request_id: res.locals.requestId }, 'storing the idempotent answer failed'))
            .finally(() => send(body));
          return res;
        };
        return next();
      }
    }
  };
}
