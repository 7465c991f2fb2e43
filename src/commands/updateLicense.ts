/**
 * Update License — PATCH /api/licenses/{id} (sync, scope license:write). Seed 003: the checks below
 * are its validations in order, codes and messages verbatim; then its logic: only when an attribute
 * changed is the licence updated (updated_at = now, updated_by = user), else it is returned as it is.
 */
import { z } from 'zod';
import { assertActivePrimaryLicense, licenseDecider } from '../domain/license/decider.js';
import { isoDateSchema } from '../domain/license/license.js';
import { conflict, notFound, unprocessable } from '../domain/shared/esozError.js';
import type { LicenseStore } from '../readModels/licenseStore.js';
import { actorOf, type Caller, type CommandDeps } from './shared/commandContext.js';
import { handleCommand } from './shared/commandHandler.js';
import { checkLicenseDates, legalEntityLicensesCommandStream } from './shared/licenses.js';
import type { CommandResult } from './shared/result.js';

export const updateLicenseRequestSchema = z.object({
  type: z.string().min(1).optional(),
  license_number: z.string().nullable().optional(),
  issued_by: z.string().min(1).optional(),
  issued_date: isoDateSchema.optional(),
  active_from_date: isoDateSchema.optional(),
  expiry_date: isoDateSchema.nullable().optional(),
  order_no: z.string().min(1).optional(),
  what_licensed: z.string().nullable().optional(),
  issuer_status: z.string().nullable().optional(),
  is_primary: z.boolean().optional(),
});
export type UpdateLicenseRequest = z.infer<typeof updateLicenseRequestSchema>;

export async function updateLicense(deps: CommandDeps, licenses: LicenseStore, caller: Caller, id: string, body: UpdateLicenseRequest): Promise<CommandResult> {
  // The licence's legal entity (its stream) is found through the read model; its state through the stream.
  const known = await licenses.get(id);
  if (!known) throw notFound('License was not found'); // 404
  // A sync method: its causation id (the request id) is new on every call, nothing to skip.
  const options = { skipIfAlreadyHandled: false };
  return handleCommand(
    deps,
    legalEntityLicensesCommandStream(known.legal_entity_id),
    caller,
    (state, now) => {
      const license = state.licenses[id];
      if (!license) throw notFound('License was not found'); // 404
      if (license.is_primary) throw conflict('Only additional license can be updated'); // 409
      if (body.is_primary !== false) throw unprocessable('Additional license can not be changed to primary', '$.is_primary'); // 422
      if (license.legal_entity_id !== caller.legalEntityId) throw conflict("License doesn't correspond to your legal entity"); // 409
      if (body.type !== undefined && body.type !== license.type) throw conflict('License type can not be updated'); // 409
      assertActivePrimaryLicense(state, now.toISOString().slice(0, 10)); // 404 “No active primary license found for legal entity”
      // As in Create: the licence as it would be after the update must keep its dates in order.
      checkLicenseDates({
        issued_date: body.issued_date ?? license.issued_date,
        active_from_date: body.active_from_date ?? license.active_from_date,
        expiry_date: body.expiry_date !== undefined ? body.expiry_date : license.expiry_date,
      });

      const { type: _type, is_primary: _primary, ...changes } = body;
      // Nothing changed: no events, nothing appended.
      return licenseDecider.decide({ type: 'UpdateLicense', id, changes, actor: actorOf(caller, now) }, state);
    },
    options,
  );
}
