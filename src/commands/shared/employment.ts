/**
 * Employment (trust boundary): a token's user may act for its legal entity only while they are an
 * active employee of it in the reference data (user → party → employee of that legal entity,
 * is_active and APPROVED). A token alone is not enough: an MIS could hold a token of a former employee.
 */
import { conflict, forbidden, type EsozError } from '../../domain/shared/esozError.js';
import type { ReferenceView } from '../../referenceData/referenceView.js';

export const NOT_AN_ACTIVE_EMPLOYEE = 'User is not an active employee of the legal entity';
/** Mark in error's documented answer for a user who may not act on the dispense (spec §1.3.4). */
export const NOT_PERFORMER_OR_APPROVED = "Employee is not performer of device dispense, doesn't have approval or required employee type";

export type Acting = { userId: string; legalEntityId: string };

/** Whether the user is an active, APPROVED employee of the legal entity (user → party → employee). */
export function isActiveEmployee(referenceData: ReferenceView, { userId, legalEntityId }: Acting): boolean {
  const party = referenceData.partyOfUser(userId);
  if (!party) return false;
  return referenceData.employeesOfParty(party.id).some((e) => e.legal_entity_id === legalEntityId && e.is_active && e.status.toUpperCase() === 'APPROVED');
}

/** 403 "User is not an active employee of the legal entity" (or `failure()`) unless the user is one. */
export function checkActiveEmployee(referenceData: ReferenceView, acting: Acting, failure: () => EsozError = () => forbidden(NOT_AN_ACTIVE_EMPLOYEE)): void {
  if (!isActiveEmployee(referenceData, acting)) throw failure();
}

export const notPerformerOrApproved = () => conflict(NOT_PERFORMER_OR_APPROVED);
