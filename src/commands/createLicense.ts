/**
 * Create license — POST /api/licenses (sync, scope license:write). Spec §2.2: the nine checks in the
 * page's order, codes and messages verbatim. Only additional licences are created here.
 */
import { v4 as uuidv4 } from 'uuid';
import { z } from 'zod';
import { assertActivePrimaryLicense, assertTypeNotPresent, licenseDecider } from '../domain/license/decider.js';
import { isoDateSchema, type License } from '../domain/license/license.js';
import { conflict, notAllowedInEnum, unprocessable } from '../domain/shared/esozError.js';
import { actorOf, type Caller, type CommandDeps } from './shared/commandContext.js';
import { handleCommand } from './shared/commandHandler.js';
import { checkLicenseDates, legalEntityLicensesCommandStream } from './shared/licenses.js';
import type { CommandResult } from './shared/result.js';

export const createLicenseRequestSchema = z.object({
  type: z.string().min(1),
  license_number: z.string().nullable().optional(),
  issued_by: z.string().min(1),
  issued_date: isoDateSchema,
  active_from_date: isoDateSchema,
  expiry_date: isoDateSchema.nullable().optional(),
  order_no: z.string().min(1),
  what_licensed: z.string().nullable().optional(),
  issuer_status: z.string().nullable().optional(),
  is_primary: z.boolean(),
});
export type CreateLicenseRequest = z.infer<typeof createLicenseRequestSchema>;

const LICENSE_TYPES = 'LICENSE_TYPE';
const additionalLicenseTypes = (legalEntityType: string) => `LEGAL_ENTITY_${legalEntityType}_ADDITIONAL_LICENSE_TYPES`;

export async function createLicense(deps: CommandDeps, caller: Caller, body: CreateLicenseRequest): Promise<CommandResult & { id: string }> {
  const id = uuidv4();
  // A sync method: its causation id (the request id) is new on every call, nothing to skip.
  const options = { skipIfAlreadyHandled: false };
  const { position } = await handleCommand(
    deps,
    legalEntityLicensesCommandStream(caller.legalEntityId),
    caller,
    async (state, now) => {
      const referenceData = await deps.reference.view({ legal_entities: [caller.legalEntityId] });
      const today = now.toISOString().slice(0, 10);

      // 3. Legal entity from the token is ACTIVE or SUSPENDED
      const legalEntity = referenceData.legalEntity(caller.legalEntityId);
      if (!legalEntity || !['ACTIVE', 'SUSPENDED'].includes(legalEntity.status.toUpperCase()))
        throw unprocessable('Legal entity must be in active or suspended status');
      // 4. Only additional licences
      if (body.is_primary !== false) throw unprocessable('Only additional license can be created', '$.is_primary');
      // 5. $.type in LICENSE_TYPE
      const types = referenceData.dictionaryCodes(LICENSE_TYPES);
      if (!types.includes(body.type)) throw notAllowedInEnum('$.type', types);
      // 6. $.type allowed for the legal entity's type
      if (!referenceData.dictionaryCodes(additionalLicenseTypes(legalEntity.type)).includes(body.type))
        throw conflict('Legal entity type and license type mismatch');
      // 7. The legal entity has an active primary licence
      assertActivePrimaryLicense(state, today); // 404 “No active primary license found for legal entity”
      // 8. No licence of this type yet
      assertTypeNotPresent(state, body.type); // 409 “License with type $.type is already present”
      // 9. Dates
      checkLicenseDates({ issued_date: body.issued_date, active_from_date: body.active_from_date, expiry_date: body.expiry_date ?? null });

      const actor = actorOf(caller, now);
      const at = actor.at;
      const license: License = {
        id,
        legal_entity_id: legalEntity.id,
        type: body.type,
        license_number: body.license_number ?? null,
        issued_by: body.issued_by,
        issued_date: body.issued_date,
        active_from_date: body.active_from_date,
        expiry_date: body.expiry_date ?? null,
        order_no: body.order_no,
        what_licensed: body.what_licensed ?? null,
        issuer_status: body.issuer_status ?? null,
        is_primary: false,
        is_active: true,
        inserted_at: at,
        inserted_by: caller.userId,
        updated_at: at,
        updated_by: caller.userId,
      };
      return licenseDecider.decide({ type: 'CreateLicense', license, today, actor }, state);
    },
    options,
  );
  return { id, position };
}
