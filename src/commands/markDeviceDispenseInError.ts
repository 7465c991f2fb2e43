/**
 * Mark in error Device dispense — PATCH …/device_dispenses/{id}/actions/mark_in_error (async, scope
 * device_dispense:mark_in_error, signed). Seed 001; the checks below follow its "Validations" section
 * in order, with its codes and messages. The request schema ({signed_data}) is checked before the job.
 */
import { assertCanBeMarkedInError, deviceDispenseDecider } from '../domain/deviceDispense/decider.js';
import { codeableConceptSchema, renderDeviceDispense } from '../domain/deviceDispense/document.js';
import { conflict, notAllowedInEnum, notFound, unprocessable } from '../domain/shared/esozError.js';
import { actorOf, type Caller, type CommandDeps } from './shared/commandContext.js';
import { handleCommand } from './shared/commandHandler.js';
import { canonicalJson, checkLegalEntityActive, checkLegalEntityType, verifySignatureOfUser, withoutKeys } from './shared/checks.js';
import { deviceDispenseCommandStream, ofPatient, saveSignedContent, type SignedActionInput } from './shared/deviceDispenses.js';
import { checkActiveEmployee, notPerformerOrApproved } from './shared/employment.js';
import type { CommandResult } from './shared/result.js';

const MARK_IN_ERROR_REASONS = 'device_dispense_mark_in_error_reasons';
/** Neither the seed nor the signed content compare these: they are what the signer changes. */
const CHANGED_BY_SIGNER = ['status', 'status_reason'] as const;

export function markDeviceDispenseInError(deps: CommandDeps, caller: Caller, input: SignedActionInput): Promise<CommandResult> {
  return handleCommand(deps, deviceDispenseCommandStream(input.device_dispense_id), caller, async (state, now) => {
    const referenceData = await deps.reference.view({ legal_entities: [caller.legalEntityId], users: [caller.userId] });
    // Validate Legal entity
    const legalEntity = referenceData.legalEntity(caller.legalEntityId);
    checkLegalEntityType(legalEntity, referenceData); // 409 “Invalid LegalEntity type“
    checkLegalEntityActive(legalEntity); // 409 “client_id refers to legal entity that is not active”
    const dispense = ofPatient(state, input.patient_id);
    if (!dispense) throw notFound(); // nothing to compare the legal entity with
    if (dispense.performer_legal_entity.identifier.value !== caller.legalEntityId) throw conflict('Device dispense belongs to another legal entity');
    // Trust boundary, right after the legal-entity checks: this method's documented answer for a user who may not act.
    checkActiveEmployee(referenceData, caller, notPerformerOrApproved); // 409 "Employee is not performer of device dispense, …"

    // Validate digital signature: signed (400), valid and not expired (400), DRFO of the user (422)
    const signed = await verifySignatureOfUser(input.body.signed_data, deps, referenceData, caller);

    // Validate transition: status != entered_in_error and != completed
    assertCanBeMarkedInError(dispense); // 409 ('Device dispense in status <status> cannot be marked in error')

    // Validate status: $.status is entered_in_error
    if (signed.status !== 'entered_in_error') throw notAllowedInEnum('$.status', ['entered_in_error']);

    // Validate status reason: $.status_reason.coding[].code from device_dispense_mark_in_error_reasons
    const reasons = referenceData.dictionaryCodes(MARK_IN_ERROR_REASONS);
    const statusReason = codeableConceptSchema.safeParse(signed.status_reason);
    const reasonCode = statusReason.success ? statusReason.data.coding[0]?.code : undefined;
    if (!statusReason.success || reasonCode === undefined || !reasons.includes(reasonCode)) throw notAllowedInEnum('$.status_reason.coding[0].code', reasons);

    // Validate content: the signed content, without status, equals the dispense as GET renders it
    const rendered = withoutKeys(renderDeviceDispense(dispense), CHANGED_BY_SIGNER);
    if (canonicalJson(withoutKeys(signed, CHANGED_BY_SIGNER)) !== canonicalJson(rendered))
      throw unprocessable("Signed content doesn't match with previously created device dispense", '$.signed_data');

    // Service logic: save signed content to media storage (idempotent by key: a retry saves the same
    // file again), then the status change.
    const link = await saveSignedContent(deps.media, dispense.id, caller, input.body.signed_data);
    return deviceDispenseDecider.decide(
      { type: 'MarkDeviceDispenseInError', status_reason: statusReason.data, signed_content_link: link, actor: actorOf(caller, now) },
      state,
    );
  });
}
