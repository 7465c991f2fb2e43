/**
 * Create Device dispense — POST /api/patients/{patient_id}/device_dispenses (async, scope
 * device_dispense:write). Spec §1.3.1. Token, scope and the JSON schema are checked before the job
 * is created; everything below runs in the job, in the order the method page lists it.
 */
import { z } from 'zod';
import { deviceDispenseDecider } from '../domain/deviceDispense/decider.js';
import { reference, type DeviceDispenseDetail, type DeviceDispenseDocument } from '../domain/deviceDispense/document.js';
import { deviceRequestDispensingDecider, deviceRequestDispensingStream } from '../domain/deviceRequestDispensing/decider.js';
import { conflict, forbidden, notFound, unprocessable } from '../domain/shared/esozError.js';
import type { DeviceDefinition, DeviceRequest, ReferenceUse } from '../referenceData/records.js';
import type { ReferenceView, ViewRequest } from '../referenceData/referenceView.js';
import { actorOf, type Caller, type CommandDeps } from './shared/commandContext.js';
import { handleCommand } from './shared/commandHandler.js';
import { checkLegalEntityActive, isActive } from './shared/checks.js';
import { checkActiveEmployee } from './shared/employment.js';
import { handedOverInPeriod } from './shared/handedOver.js';
import { deviceDispenseCommandStream, effectiveDeviceRequestStatus, loadDispensingOfDeviceRequest, type AttachedDispense } from './shared/deviceDispenses.js';
import type { CommandResult } from './shared/result.js';

const coding = z.object({ system: z.string(), code: z.string() });
const identifier = z.object({ type: z.object({ coding: z.array(coding).min(1), text: z.string().optional() }), value: z.string().min(1) });
const requestReference = z.object({ identifier });

/** The request body (openapi/device-dispense-create.json; single-value example enums there are not rules). */
export const createDeviceDispenseRequestSchema = z.object({
  id: z.uuid(),
  status: z.enum(['in_progress']),
  performer: requestReference,
  location: requestReference,
  based_on: requestReference,
  program: requestReference.optional(),
  primary_source: z.boolean(),
  note: z.string().optional(),
  when_handed_over: z.iso.datetime({ offset: true }).optional(),
  verification_code: z.string().optional(),
  details: z
    .array(
      z
        .strictObject({
          device: z.object({ identifier }).optional(),
          device_code: z.object({ coding: z.array(coding).min(1), text: z.string().optional() }).optional(),
          program_device: requestReference.optional(),
          quantity: z.strictObject({ value: z.number().positive(), system: z.string(), code: z.string() }),
          sell_price: z.number().nonnegative().optional(),
          discount_amount: z.number().nonnegative().optional(),
        })
        .refine((d) => (d.device === undefined) !== (d.device_code === undefined), { message: 'exactly one of device or device_code is required' }),
    )
    .min(1),
});
export type CreateDeviceDispenseRequest = z.infer<typeof createDeviceDispenseRequestSchema>;
export type CreateDeviceDispenseInput = { patient_id: string; body: CreateDeviceDispenseRequest };

const resourceCode = (ref: { identifier: { type: { coding: { code: string }[] } } }) => ref.identifier.type.coding[0]?.code;
const fullName = (party: { last_name: string; first_name: string; second_name?: string | undefined }) =>
  [party.last_name, party.first_name, party.second_name].filter(Boolean).join(' ');

// --- Validations, in the order of the method page -------------------------------------------------

function checkPatient(referenceData: ReferenceView, patientId: string) {
  const person = referenceData.person(patientId);
  if (!person) throw notFound('not found');
  if (person.status.toLowerCase() !== 'active') throw conflict('Patient is not active');
  if (person.verification_status.toUpperCase() === 'NOT_VERIFIED') throw conflict('Patient is not verified');
}

function checkPerformer(referenceData: ReferenceView, body: CreateDeviceDispenseRequest, caller: Caller, legalEntityId: string) {
  const employee = referenceData.employee(body.performer.identifier.value);
  const party = referenceData.partyOfUser(caller.userId);
  const entry = '$.performer.identifier.value';
  if (!employee || !party || employee.party_id !== party.id) throw unprocessable('User is not allowed to create device dispense for the performer', entry);
  if (!employee.is_active || employee.status.toUpperCase() !== 'APPROVED') throw unprocessable('Employee is not active ', entry);
  if (employee.legal_entity_id !== legalEntityId) throw unprocessable('Employee does not belong to legal entity from token', entry);
  return { employee, party: referenceData.party(employee.party_id)! };
}

function checkDivision(referenceData: ReferenceView, body: CreateDeviceDispenseRequest, legalEntityId: string) {
  const division = referenceData.division(body.location.identifier.value);
  if (!division) throw conflict('Division not found');
  if (!isActive(division.status)) throw conflict('Division is not active');
  if (division.legal_entity_id !== legalEntityId) throw conflict("Division does not belong to user's legal entity");
  if (referenceData.config.device_dispense_division_dls_verify && !division.dls_verified) throw conflict('Division is not verified in DLS');
  return division;
}

function checkDeviceRequest(
  deviceRequest: DeviceRequest | undefined,
  patientId: string,
  status: string,
  today: string,
): asserts deviceRequest is DeviceRequest {
  if (!deviceRequest || deviceRequest.subject_id !== patientId) throw unprocessable('Device request not found', '$.based_on.identifier.value');
  if (deviceRequest.intent !== 'order') throw conflict("Only device request with intent = 'order' can be dispensed");
  if (!isActive(status)) throw conflict('Device request is not active');
  if (deviceRequest.dispense_valid_to < today) throw conflict('Device request is expired for dispense');
}

function checkProgram(referenceData: ReferenceView, body: CreateDeviceDispenseRequest, deviceRequest: DeviceRequest) {
  const programId = body.program?.identifier.value ?? null;
  if (programId !== deviceRequest.program_id) throw conflict("Program in dispense doesn't match the one in device request");
  if (programId === null) return undefined;
  // Qualify: a program that is gone or switched off cannot pay for the dispense.
  const program = referenceData.medicalProgram(programId);
  if (!program?.is_active) throw conflict('Device request can not be dispensed. Invoke qualify dispense request API to get detailed info');
  return program;
}

function checkNoOtherActiveDispense(attached: AttachedDispense[], dispenseId: string, now: Date, ttlDays: number) {
  const freshest = now.getTime() - ttlDays * 24 * 3600 * 1000;
  // In progress within the TTL; or attached by another create that has not appended its creation yet.
  const active = (a: AttachedDispense) =>
    a.document
      ? a.document.status === 'in_progress' && Date.parse(a.document.inserted_at) >= freshest
      : a.id !== dispenseId && Date.parse(a.attachedAt) >= freshest;
  if (attached.some(active)) throw unprocessable('Other active device dispense already exist.', '$.based_on.identifier.value');
}

function checkDetails(referenceData: ReferenceView, body: CreateDeviceDispenseRequest, deviceRequest: DeviceRequest): DeviceDefinition[] {
  return body.details.map((detail, i) => {
    const at = `$.details[${i}]`;
    if (!detail.device || resourceCode(detail.device) !== 'device_definition')
      throw unprocessable('Only device definition is allowed for dispense', `${at}.device.identifier.type.coding[0].code`);
    const definition = referenceData.deviceDefinition(detail.device.identifier.value);
    if (!definition?.is_active) throw unprocessable('Device definition not found', `${at}.device.identifier.value`);
    const prescribed = deviceRequest.code;
    const matches =
      'device_definition_id' in prescribed
        ? prescribed.device_definition_id === definition.id
        : prescribed.classification_type === definition.classification_type;
    if (!matches) throw unprocessable('Dispensed device doesn’t match with prescribed device', `${at}.device.identifier.value`);
    const prescribedUnit = deviceRequest.quantity?.code;
    if (prescribedUnit !== undefined && (definition.packaging_unit !== prescribedUnit || detail.quantity.code !== prescribedUnit))
      throw unprocessable('Dispensed packaging unit doesn’t match with prescribed packaging unit', `${at}.quantity.code`);
    if (detail.quantity.value % definition.packaging_count !== 0)
      throw unprocessable('The quantity must be divisible to packaging_count of prescribed Device Definition', `${at}.quantity.value`);
    return definition;
  });
}

/**
 * Not on the page (the contract's rule, docs/decisions): one dispense per request with a quantity, so
 * the details together must not exceed it (their unit is the request's, checked above).
 */
function checkDispensedQuantity(body: CreateDeviceDispenseRequest, deviceRequest: DeviceRequest) {
  if (deviceRequest.quantity === null) return;
  let dispensed = 0;
  body.details.forEach((detail, i) => {
    dispensed += detail.quantity.value;
    if (dispensed > deviceRequest.quantity!.value) throw unprocessable('Dispensed quantity exceeds the prescribed quantity', `$.details[${i}].quantity.value`);
  });
}

/** The records a Create reads, named before its checks run (one lookup for all of them). */
export function createViewRequest(caller: Caller, patientId: string, body: CreateDeviceDispenseRequest): ViewRequest {
  return {
    legal_entities: [caller.legalEntityId],
    users: [caller.userId],
    persons: [patientId],
    employees: [body.performer.identifier.value],
    divisions: [body.location.identifier.value],
    device_requests: [body.based_on.identifier.value],
    medical_programs: body.program ? [body.program.identifier.value] : [],
    device_definitions: body.details.flatMap((d) => (d.device ? [d.device.identifier.value] : [])),
  };
}

function checkProgramDevices(body: CreateDeviceDispenseRequest) {
  body.details.forEach((detail, i) => {
    if (detail.program_device && resourceCode(detail.program_device) !== 'program_device')
      throw unprocessable("Invalid code. Expected 'program_device'", `$.details[${i}].program_device.identifier.type.coding[0].code`);
  });
}

function checkVerificationCode(body: CreateDeviceDispenseRequest, deviceRequest: DeviceRequest) {
  if (deviceRequest.verification_code !== null && body.verification_code !== deviceRequest.verification_code) throw forbidden('Incorrect code');
}

// --- The command -----------------------------------------------------------------------------------

export type CreateResult = CommandResult & { id: string; patientId: string };

export async function createDeviceDispense(
  deps: CommandDeps,
  caller: Caller,
  { patient_id: patientId, body }: CreateDeviceDispenseInput,
): Promise<CreateResult> {
  // The device request's dispensing stream is read with the dispense's own: one round trip. Both are
  // new on a request's first dispense (the dispense id is the MIS's): decided on as empty first, no read.
  const stream = {
    ...deviceDispenseCommandStream(body.id),
    alsoRead: [deviceRequestDispensingStream(body.based_on.identifier.value)],
    usuallyNew: true,
  };
  const handled = await handleCommand(deps, stream, caller, async (state, now, reader) => {
    const referenceData = await deps.reference.view(createViewRequest(caller, patientId, body));
    const legalEntity = referenceData.legalEntity(caller.legalEntityId);
    checkLegalEntityActive(legalEntity);
    // Trust boundary (not on the page): right after its legal-entity check.
    checkActiveEmployee(referenceData, caller); // 403 'User is not an active employee of the legal entity'
    checkPatient(referenceData, patientId);
    const { employee, party } = checkPerformer(referenceData, body, caller, legalEntity.id);
    const division = checkDivision(referenceData, body, legalEntity.id);

    const deviceRequest = referenceData.deviceRequest(body.based_on.identifier.value);
    // One read of the request's dispensing: the checks and the attach below use the same revision.
    const dispensing = await loadDispensingOfDeviceRequest(reader, body.based_on.identifier.value);
    const requestStatus = deviceRequest ? effectiveDeviceRequestStatus(deviceRequest.status, deviceRequest.quantity !== null, dispensing.documents) : '';
    checkDeviceRequest(deviceRequest, patientId, requestStatus, now.toISOString().slice(0, 10));
    const program = checkProgram(referenceData, body, deviceRequest);
    checkNoOtherActiveDispense(dispensing.dispenses, body.id, now, referenceData.config.device_dispense_ttl_days);
    const definitions = checkDetails(referenceData, body, deviceRequest);
    checkDispensedQuantity(body, deviceRequest);
    checkProgramDevices(body);
    checkVerificationCode(body, deviceRequest);
    // Not on the page: a hand-over given at creation is now (within the clock-skew allowance) and in the request's period.
    const skewMs = deps.clockSkewMs ?? 60_000;
    if (body.when_handed_over !== undefined && !handedOverInPeriod(new Date(body.when_handed_over), { notBefore: now, now, skewMs, deviceRequest }))
      throw unprocessable('when_handed_over is not within the device request dispense period', '$.when_handed_over');
    // What the decision read, by version: an auditor re-checks it against the records as they were.
    const provenance: ReferenceUse[] = [
      { kind: 'legal_entities', id: legalEntity.id, version: legalEntity.version },
      { kind: 'employees', id: employee.id, version: employee.version },
      { kind: 'divisions', id: division.id, version: division.version },
      { kind: 'persons', id: patientId, version: referenceData.person(patientId)!.version },
      { kind: 'device_requests', id: deviceRequest.id, version: deviceRequest.version },
      ...definitions.map((d): ReferenceUse => ({ kind: 'device_definitions', id: d.id, version: d.version })),
      ...(program ? [{ kind: 'medical_programs' as const, id: program.id, version: program.version }] : []),
    ];

    const actor = actorOf(caller, now);
    const at = actor.at;
    const document: Omit<DeviceDispenseDocument, 'signed_content_links'> = {
      id: body.id,
      based_on: reference('device_request', deviceRequest.id, 'null'),
      status: 'in_progress',
      subject: reference('patient', patientId, 'null'),
      primary_source: body.primary_source,
      performer: reference('employee', employee.id, fullName(party)),
      location: reference('division', division.id, division.name),
      ...(body.when_handed_over !== undefined ? { when_handed_over: new Date(body.when_handed_over).toISOString() } : {}),
      note: body.note ?? '',
      performer_legal_entity: reference('legal_entity', legalEntity.id, legalEntity.name),
      ...(program ? { program: reference('medical_program', program.id, program.name) } : {}),
      details: body.details.map((detail, i): DeviceDispenseDetail => ({
        device: reference('device_definition', definitions[i]!.id),
        ...(detail.program_device ? { program_device: reference('program_device', detail.program_device.identifier.value, 'null') } : {}),
        quantity: {
          value: detail.quantity.value,
          system: 'device_unit',
          code: detail.quantity.code,
          unit: referenceData.dictionaryDescription('device_unit', detail.quantity.code) ?? detail.quantity.code,
        },
        ...(detail.sell_price !== undefined ? { sell_price: detail.sell_price } : {}),
        ...(detail.discount_amount !== undefined ? { discount_amount: detail.discount_amount } : {}),
      })),
      device_classification_types: definitions.map((d) => d.classification_type),
      inserted_at: at,
      inserted_by: caller.userId,
      updated_at: at,
      updated_by: caller.userId,
    };

    // Attach to the device request first: of two creates racing on one request, one attaches and the
    // other re-runs its checks against the winner (422 "Other active device dispense already exist.").
    const attach = deviceRequestDispensingDecider.decide(
      { type: 'AttachDeviceDispense', device_request_id: deviceRequest.id, device_dispense_id: body.id, actor },
      dispensing.state,
    );
    return {
      appendFirst: [{ streamName: deviceRequestDispensingStream(deviceRequest.id), events: attach, expectedRevision: dispensing.revision }],
      events: deviceDispenseDecider.decide({ type: 'CreateDeviceDispense', dispense: document, patient_id: patientId, reference: provenance, actor }, state),
    };
  });
  return { id: body.id, patientId, position: handled.position };
}
