/** Checks that several ЕСОЗ methods list with the same codes and messages. */
import { conflict, forbidden, unprocessable } from '../../domain/shared/esozError.js';
import type { LegalEntity } from '../../referenceData/records.js';
import type { ReferenceView } from '../../referenceData/referenceView.js';
import { verifySignedContent } from '../../signatures/verifySignedContent.js';
import type { Caller, CommandDeps } from './commandContext.js';

export const isActive = (status: string) => status.toUpperCase() === 'ACTIVE';

/** “Check that "type" in me_allowed_transactions_le_types config parameter” → 409 “Invalid LegalEntity type“. */
export function checkLegalEntityType(legalEntity: LegalEntity | undefined, referenceData: ReferenceView): void {
  // A legal entity we do not know has no type to judge; the next check ("exists") answers for it.
  if (legalEntity && !referenceData.config.me_allowed_transactions_le_types.includes(legalEntity.type)) throw conflict('Invalid LegalEntity type');
}

/** “exists and has status = active” → 409 “client_id refers to legal entity that is not active”. */
export function checkLegalEntityActive(legalEntity: LegalEntity | undefined): asserts legalEntity is LegalEntity {
  if (!legalEntity || !isActive(legalEntity.status)) throw conflict('client_id refers to legal entity that is not active');
}

const normaliseDrfo = (value: string) => value.replace(/\s/g, '').toUpperCase();

/**
 * Validate digital signature: signed (400 “Invalid signed content”), valid and not expired (400 with
 * the reason), and DS belongs to the user: DRFO from DS equals the user's party tax_id (422 “Does not
 * match the signer drfo”). Returns the signed payload.
 */
export async function verifySignatureOfUser(
  signedData: unknown,
  deps: CommandDeps,
  reference: ReferenceView,
  caller: Caller,
): Promise<Record<string, unknown>> {
  const verified = await verifySignedContent(signedData, deps.trustedCAs, deps.clock());
  const party = reference.partyOfUser(caller.userId);
  if (!party) throw forbidden('User is not allowed to this action by client_id');
  if (verified.drfo === null) throw unprocessable('Invalid drfo', '$.signed_data');
  if (normaliseDrfo(party.tax_id) !== normaliseDrfo(verified.drfo)) throw unprocessable('Does not match the signer drfo', '$.signed_data');
  return verified.payload;
}

/** JSON with object keys sorted, so two documents compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export const withoutKeys = (value: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> =>
  Object.fromEntries(Object.entries(value).filter(([key]) => !keys.includes(key)));
