/**
 * Stop Device dispense — PATCH /api/patients/{patient_id}/device_dispenses/{id}/actions/stop
 * (async, scope device_dispense:stop). Seed 000 (RС_[UPD] Stop Device dispense); the checks below are
 * its "Validations" section, in its order, with its codes and messages.
 */
import { deviceDispenseDecider } from '../domain/deviceDispense/decider.js';
import { conflict, notFound } from '../domain/shared/esozError.js';
import { actorOf, type Caller, type CommandDeps } from './shared/commandContext.js';
import { handleCommand } from './shared/commandHandler.js';
import { checkLegalEntityActive, checkLegalEntityType } from './shared/checks.js';
import { checkActiveEmployee } from './shared/employment.js';
import { deviceDispenseCommandStream, ofPatient } from './shared/deviceDispenses.js';
import type { CommandResult } from './shared/result.js';

export type StopDeviceDispenseInput = { patient_id: string; device_dispense_id: string };

export function stopDeviceDispense(deps: CommandDeps, caller: Caller, input: StopDeviceDispenseInput): Promise<CommandResult> {
  return handleCommand(deps, deviceDispenseCommandStream(input.device_dispense_id), caller, async (state, now) => {
    const reference = await deps.reference.view({ legal_entities: [caller.legalEntityId], users: [caller.userId] });
    // Validate Legal entity (client_id from token)
    const legalEntity = reference.legalEntity(caller.legalEntityId);
    checkLegalEntityType(legalEntity, reference); // 409 “Invalid LegalEntity type“
    checkLegalEntityActive(legalEntity); // 409 “client_id refers to legal entity that is not active”
    if (state && state.performer_legal_entity.identifier.value !== caller.legalEntityId) throw conflict('Device dispense belongs to another legal entity'); // 409
    // Trust boundary (not in the seed): right after its legal-entity checks, so they keep their place.
    checkActiveEmployee(reference, caller); // 403 'User is not an active employee of the legal entity'

    // Validate Device dispense (id from the URL): exists (404 'not_found'). That it belongs to the
    // legal entity was answered above with the seed's 409, which comes first.
    if (!ofPatient(state, input.patient_id)) throw notFound();

    // Validate transition: only in_progress → 409 ('Device dispense in status %status% cannot be stopped'),
    // answered by the decider.
    return deviceDispenseDecider.decide({ type: 'StopDeviceDispense', actor: actorOf(caller, now) }, state);
  });
}
