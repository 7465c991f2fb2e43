/**
 * Stop Device dispense — PATCH /api/patients/{patient_id}/device_dispenses/{id}/actions/stop
 * (async, scope device_dispense:stop). Seed 000 (RС_[UPD] Stop Device dispense); the checks below are
 * its "Validations" section, in its order, with its codes and messages.
 */
import { assertCanBeStopped, deviceDispenseDecider } from '../domain/deviceDispense/decider.js';
import { deviceDispenseStream } from '../domain/deviceDispense/events.js';
import { conflict, notFound } from '../domain/shared/esozError.js';
import type { Caller, CommandDeps } from './shared/commandContext.js';
import { checkLegalEntityActive, checkLegalEntityType } from './shared/checks.js';
import { checkActiveEmployee } from './shared/employment.js';
import { loadDeviceDispense, ofPatient } from './shared/deviceDispenses.js';
import { alreadyHandled, appendEvents, retryOnConflict } from './shared/eventStream.js';
import type { CommandResult } from './shared/result.js';

export type StopDeviceDispenseInput = { patient_id: string; device_dispense_id: string };

export async function stopDeviceDispense(deps: CommandDeps, caller: Caller, input: StopDeviceDispenseInput): Promise<CommandResult> {
  return retryOnConflict(async () => {
    const { state, revision, events } = await loadDeviceDispense(deps.eventStore, input.device_dispense_id);
    const handled = alreadyHandled(events, caller);
    if (handled) return { position: handled.position }; // a re-run of this job after a crash

    // Validate Legal entity (client_id from token)
    const legalEntity = deps.referenceData.legalEntity(caller.clientId);
    checkLegalEntityType(legalEntity, deps.referenceData); // 409 “Invalid LegalEntity type“
    checkLegalEntityActive(legalEntity); // 409 “client_id refers to legal entity that is not active”
    if (state && state.performer_legal_entity.identifier.value !== caller.clientId)
      throw conflict('Device dispense belongs to another legal entity'); // 409
    // Trust boundary (not in the seed): right after its legal-entity checks, so they keep their place.
    checkActiveEmployee(deps.referenceData, caller); // 403 'User is not an active employee of the legal entity'

    // Validate Device dispense (id from the URL)
    const dispense = ofPatient(state, input.patient_id);
    if (!dispense) throw notFound(); // 404 ('not_found'): exists
    if (dispense.performer_legal_entity.identifier.value !== caller.clientId) throw notFound(); // 404: belongs to legal entity

    // Validate transition: only in_progress → 409 ('Device dispense in status %status% cannot be stopped')
    assertCanBeStopped(dispense);

    const now = deps.clock();
    const stopped = deviceDispenseDecider.decide({ type: 'StopDeviceDispense', actor: { at: now.toISOString(), by: caller.userId, legal_entity_id: caller.clientId } }, state);
    const appended = await appendEvents(deps.eventStore, deviceDispenseStream(dispense.id), stopped, revision, caller, now);
    return { position: appended.position };
  });
}
