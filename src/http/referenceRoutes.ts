/**
 * Reference data over HTTP: the upstream integration's live changes (scope reference:write), the
 * operator's reads (reference:read) and the auditor's reads as of a time (audit:read_all).
 */
import { Readable } from 'node:stream';
import type { Request, Response, Router } from 'express';
import { z } from 'zod';
import { AUDIT_READ_ALL, REFERENCE_READ, REFERENCE_WRITE } from '../auth/scopes.js';
import { importOutcomeData, kindOf, storedRecordData, type ReferenceService } from '../referenceData/referenceService.js';
import { pathParam, principalOf, type Authorize } from './app.js';
import { sendData } from './envelope.js';
import { parseOrThrow } from './validation.js';

export const REFERENCE_ROUTE = '/api/admin/reference';
const asOfSchema = z.object({ as_of: z.iso.datetime({ offset: true }) });

export function registerReferenceRoutes(router: Router, authorize: Authorize, reference: ReferenceService): void {
  router.put(`${REFERENCE_ROUTE}/:kind/:id`, authorize(REFERENCE_WRITE), async (req, res) => {
    const kind = kindOf(pathParam(req, 'kind'));
    const id = pathParam(req, 'id');
    const { status, stored, changed } = await reference.put(kind, id, req.body, principalOf(res).userId);
    if (status === 201) res.location(`${REFERENCE_ROUTE}/${kind}/${encodeURIComponent(id)}`);
    sendData(req, res, status, { ...storedRecordData(stored), changed });
  });

  const batch = async (req: Request, res: Response, kindName: string | undefined) => {
    const kind = kindName === undefined ? undefined : kindOf(kindName);
    // express.text read the NDJSON body (under REFERENCE_BATCH_BODY_LIMIT); an empty batch is a no-op.
    const text = typeof req.body === 'string' ? req.body : '';
    const outcome = await reference.importBatch(() => Readable.from([text]), kind, principalOf(res).userId);
    sendData(req, res, 200, importOutcomeData(outcome));
  };
  router.post(REFERENCE_ROUTE, authorize(REFERENCE_WRITE), (req, res) => batch(req, res, undefined));
  router.post(`${REFERENCE_ROUTE}/:kind`, authorize(REFERENCE_WRITE), (req, res) => batch(req, res, pathParam(req, 'kind')));

  router.get(`${REFERENCE_ROUTE}/:kind/:id`, authorize(REFERENCE_READ), async (req, res) => {
    sendData(req, res, 200, storedRecordData(await reference.get(kindOf(pathParam(req, 'kind')), pathParam(req, 'id'))));
  });

  // The national auditor's (caller class auditor): reference records are not any one legal entity's.
  router.get('/api/audit/reference/:kind/:id', authorize(AUDIT_READ_ALL), async (req, res) => {
    const kind = kindOf(pathParam(req, 'kind'));
    const { as_of } = parseOrThrow(asOfSchema, req.query, 'query_parameter');
    sendData(req, res, 200, storedRecordData(await reference.asOf(kind, pathParam(req, 'id'), new Date(as_of))));
  });
}
