/**
 * Complete Device dispense — PATCH …/device_dispenses/{id}/actions/complete (async, scope
 * device_dispense:complete, signed). Spec §1.3.2 (RС_[UPD] Complete Device dispense); the checks run in
 * the order of that page. The signed content is the dispense as GET renders it, with
 * `when_handed_over`, `payment_amount` (and `payment_id`) added and status changed to completed.
 */
import { assertCanBeCompleted, deviceDispenseDecider } from '../domain/deviceDispense/decider.js';
import { renderDeviceDispense } from '../domain/deviceDispense/document.js';
import { isCalendarDate } from '../domain/shared/calendarDate.js';
import { conflict, notAllowedInEnum, notFound, unprocessable } from '../domain/shared/esozError.js';
import { actorOf, type Caller, type CommandDeps } from './shared/commandContext.js';
import { handleCommand } from './shared/commandHandler.js';
import { canonicalJson, checkLegalEntityActive, isActive, verifySignatureOfUser, withoutKeys } from './shared/checks.js';
import {
  deviceDispenseCommandStream,
  effectiveDeviceRequestStatus,
  loadDispensingOfDeviceRequest,
  ofPatient,
  saveSignedContent,
  type SignedActionInput,
} from './shared/deviceDispenses.js';
import { checkActiveEmployee } from './shared/employment.js';
import { handedOverInPeriod } from './shared/handedOver.js';
import type { CommandResult } from './shared/result.js';

/** What completing changes in the signed content; the rest must equal the stored dispense. */
const CHANGED_BY_SIGNER = ['status', 'status_reason', 'when_handed_over', 'payment_amount', 'payment_id'] as const;
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

const required = (property: string) => unprocessable(`Required property ${property} was not present`, `$.${property}`, 'required');

export function completeDeviceDispense(deps: CommandDeps, caller: Caller, input: SignedActionInput): Promise<CommandResult> {
  const { eventStore } = deps;
  return handleCommand(deps, deviceDispenseCommandStream(input.device_dispense_id), caller, async (state, now) => {
    const referenceData = await deps.reference.view({
      legal_entities: [caller.legalEntityId],
      users: [caller.userId],
      device_requests: state ? [state.based_on.identifier.value] : [],
    });
    // Signature: signed (400 “Invalid signed content”), valid and not expired, DRFO = party.tax_id (422)
    const signed = await verifySignatureOfUser(input.body.signed_data, deps, referenceData, caller);

    // Legal entity is active
    checkLegalEntityActive(referenceData.legalEntity(caller.legalEntityId)); // 409
    // Trust boundary (not on the page): right after its legal-entity check.
    checkActiveEmployee(referenceData, caller); // 403 'User is not an active employee of the legal entity'

    // Device dispense exists and belongs to the same legal entity
    const dispense = ofPatient(state, input.patient_id);
    if (!dispense || dispense.performer_legal_entity.identifier.value !== caller.legalEntityId) throw notFound(); // 404 ('not_found')

    // Payment data are required for a dispense under a medical program
    if (dispense.program) {
      if (signed.payment_amount === undefined) throw required('payment_amount');
      if (signed.payment_id === undefined) throw required('payment_id');
    }
    if (signed.payment_amount !== undefined && (typeof signed.payment_amount !== 'number' || signed.payment_amount < 0))
      throw unprocessable('payment_amount must be a non-negative number', '$.payment_amount');
    if (signed.payment_id !== undefined && typeof signed.payment_id !== 'string') throw unprocessable('payment_id must be a string', '$.payment_id');

    // when_handed_over within the device request's dispense period
    if (signed.when_handed_over === undefined) throw required('when_handed_over');
    const deviceRequest = referenceData.deviceRequest(dispense.based_on.identifier.value);
    if (
      typeof signed.when_handed_over !== 'string' ||
      !ISO_DATE_TIME.test(signed.when_handed_over) ||
      !isCalendarDate(signed.when_handed_over) ||
      Number.isNaN(Date.parse(signed.when_handed_over))
    )
      throw unprocessable('when_handed_over must be a date-time', '$.when_handed_over');
    const handedOver = new Date(signed.when_handed_over);
    if (!handedOverInPeriod(handedOver, { notBefore: new Date(dispense.inserted_at), now, skewMs: deps.clockSkewMs ?? 60_000, deviceRequest }))
      throw unprocessable('when_handed_over is not within the device request dispense period', '$.when_handed_over');

    // Device request is active
    const others = deviceRequest ? (await loadDispensingOfDeviceRequest(eventStore, deviceRequest.id)).documents : [];
    if (!deviceRequest || !isActive(effectiveDeviceRequestStatus(deviceRequest.status, deviceRequest.quantity !== null, others)))
      throw conflict('Device request is not active');

    // The dispense is completed by the user who created it
    if (dispense.inserted_by !== caller.userId) throw conflict('Employee is not an author of device dispense');

    // Transition (status model): in_progress → completed
    assertCanBeCompleted(dispense); // 409 'Device dispense in status %status% cannot be completed'
    if (signed.status !== 'completed') throw notAllowedInEnum('$.status', ['completed']);

    // Signed content equals the stored dispense, apart from what completing changes
    const rendered = withoutKeys(renderDeviceDispense(dispense), CHANGED_BY_SIGNER);
    if (canonicalJson(withoutKeys(signed, CHANGED_BY_SIGNER)) !== canonicalJson(rendered))
      throw unprocessable("Signed content doesn't match with previously created device dispense", '$.signed_data');

    // Service logic: signed content to media storage (idempotent by key: a retry saves the same file
    // again), link it, status completed.
    const link = await saveSignedContent(deps.media, dispense.id, caller, input.body.signed_data);
    return deviceDispenseDecider.decide(
      {
        type: 'CompleteDeviceDispense',
        when_handed_over: handedOver.toISOString(),
        ...(typeof signed.payment_id === 'string' ? { payment_id: signed.payment_id } : {}),
        ...(typeof signed.payment_amount === 'number' ? { payment_amount: signed.payment_amount } : {}),
        signed_content_link: link,
        // A request with a quantity is dispensed once: completing its dispense completes it here.
        ...(deviceRequest.quantity !== null ? { device_request_completed: deviceRequest.id } : {}),
        actor: actorOf(caller, now),
      },
      state,
    );
  });
}
