/**
 * Create Device dispense (spec §1.3.1), through HTTP only: every check of
 * src/commands/createDeviceDispense.ts with its code and message, in the method page's order
 * (legal entity, patient, performer, division, device request, program, other active dispense,
 * details, program device, verification code).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { ALL_SCOPES } from '../../src/auth/scopes.js';
import { createBody, ids, ref, referenceData } from '../support/fixtures.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import {
  basedOn,
  deviceRequestPool,
  dispenseApi,
  dispensesPath,
  expectInvalidAccessToken,
  expectJobConflict,
  expectJobForbidden,
  expectJobNotFound,
  expectJobUnprocessable,
  expectMissingScope,
  expectProcessed,
  expectSchemaError,
  expiredToken,
  scopesWithout,
} from './helpers.js';

const SCOPE = 'device_dispense:write';
const DAY_MS = 24 * 3600 * 1000;

const detail = (definitionId: string, quantity: { value: number; code: string }, extra: Record<string, unknown> = {}) => ({
  device: ref('device_definition', definitionId),
  quantity: { system: 'device_unit', ...quantity },
  ...extra,
});

describe.each(testBackends())('Create device dispense on %s', (backend) => {
  const data = referenceData();
  const fresh = deviceRequestPool(data, 80);
  /** Prescribed as classification 30222, 20 packs (ids.packDefinition: packs of 10), code 5678. */
  const freshByClassification = deviceRequestPool(data, 3, {
    code: { classification_type: '30222' },
    quantity: { value: 20, code: 'pack' },
    verification_code: '5678',
  });
  /** Without a program, a quantity or a verification code. */
  const freshWithoutProgram = deviceRequestPool(data, 5, { program_id: null, quantity: null, verification_code: null });
  /** Records that break two rules of one group at once (for the order within a group). */
  const both = {
    inactiveUnverifiedPatient: newId(),
    otherUsersInactiveEmployee: newId(),
    inactiveEmployeeOfOtherLegalEntity: newId(),
    inactiveDivisionOfOtherLegalEntity: newId(),
    dlsUnverifiedDivisionOfOtherLegalEntity: newId(),
    inactiveOtherClassDefinition: newId(),
    otherPatientPlanRequest: deviceRequestPool(data, 1, { subject_id: ids.otherPatient, intent: 'plan' })(),
    revokedPlanRequest: deviceRequestPool(data, 1, { intent: 'plan', status: 'revoked' })(),
    revokedExpiredRequest: deviceRequestPool(data, 1, { status: 'revoked', dispense_valid_to: '2020-01-01' })(),
  };
  data.persons.push({ id: both.inactiveUnverifiedPatient, status: 'inactive', verification_status: 'NOT_VERIFIED' });
  data.employees.push(
    {
      id: both.otherUsersInactiveEmployee,
      party_id: ids.otherParty,
      legal_entity_id: ids.legalEntity,
      status: 'DISMISSED',
      is_active: false,
      employee_type: 'PHARMACIST',
    },
    {
      id: both.inactiveEmployeeOfOtherLegalEntity,
      party_id: ids.party,
      legal_entity_id: ids.otherLegalEntity,
      status: 'DISMISSED',
      is_active: false,
      employee_type: 'PHARMACIST',
    },
  );
  data.divisions.push(
    { id: both.inactiveDivisionOfOtherLegalEntity, legal_entity_id: ids.otherLegalEntity, status: 'INACTIVE', name: 'Чужий закритий', dls_verified: true },
    { id: both.dlsUnverifiedDivisionOfOtherLegalEntity, legal_entity_id: ids.otherLegalEntity, status: 'ACTIVE', name: 'Чужий без DLS', dls_verified: false },
  );
  data.device_definitions.push({
    id: both.inactiveOtherClassDefinition,
    is_active: false,
    classification_type: '99999',
    packaging_unit: 'piece',
    packaging_count: 1,
  });
  let t: TestServer;
  let api: ReturnType<typeof dispenseApi>;
  beforeAll(async () => {
    t = await startTestServer({ data, backend });
    api = dispenseApi(t);
  });
  afterAll(async () => t.close());

  /** Sends Create for a new id on a fresh device request unless `overrides` say otherwise; the job's answer. */
  const createAs = async (overrides: Record<string, unknown> = {}, claims: Parameters<TestServer['token']>[0] = {}, patientId?: string, id = newId()) => {
    const token = await t.token(claims);
    const res = await api.create(createBody(id, { ...('based_on' in overrides ? {} : basedOn(fresh())), ...overrides }), {
      token,
      ...(patientId ? { patientId } : {}),
    });
    return Object.assign(res, { dispenseId: id });
  };
  const expectNotCreated = async (id: string) => expect((await api.get(id)).status).toBe(404);

  describe('Authorization and request schema (synchronous)', () => {
    it('401 "Invalid access token" without a token, with a malformed one and with an expired one', async () => {
      const body = createBody(newId(), basedOn(fresh()));
      expectInvalidAccessToken(await request(t.app).post(dispensesPath()).send(body));
      expectInvalidAccessToken(await api.postCreate(body, { token: 'not-a-jwt' }));
      expectInvalidAccessToken(await api.postCreate(body, { token: await expiredToken(t) }));
      await expectNotCreated(body.id);
    });

    it('403 "…Missing allowances: device_dispense:write" without the scope', async () => {
      const body = createBody(newId(), basedOn(fresh()));
      expectMissingScope(await api.postCreate(body, { token: await t.token({ scope: scopesWithout(ALL_SCOPES, SCOPE) }) }), SCOPE);
      await expectNotCreated(body.id);
    });

    it('422 validation_failed: id missing or not a uuid (rule required / format)', async () => {
      const { id: _id, ...withoutId } = createBody(newId(), basedOn(fresh()));
      expectSchemaError(await api.postCreate(withoutId), '$.id', 'required', 'required property id was not present');
      const notUuid = await api.postCreate(createBody('123', basedOn(fresh())));
      expect(notUuid.status).toBe(422);
      expect(notUuid.body.error.invalid).toEqual([expect.objectContaining({ entry: '$.id', rules: [expect.objectContaining({ rule: 'format' })] })]);
    });

    it('422 "value is not allowed in enum" for a status other than in_progress', async () => {
      for (const status of ['completed', 'stopped', 'entered_in_error', 'IN_PROGRESS']) {
        const body = createBody(newId(), { ...basedOn(fresh()), status });
        expectSchemaError(await api.postCreate(body), '$.status', 'inclusion', 'value is not allowed in enum');
        await expectNotCreated(body.id);
      }
    });

    it('422 for other required properties and for a detail with both device and device_code', async () => {
      const { details: _d, ...withoutDetails } = createBody(newId(), basedOn(fresh()));
      expectSchemaError(await api.postCreate(withoutDetails), '$.details', 'required', 'required property details was not present');
      const both = createBody(newId(), {
        ...basedOn(fresh()),
        details: [
          {
            ...detail(ids.definition, { value: 10, code: 'piece' }),
            device_code: { coding: [{ system: 'device_definition_classification_type', code: '30221' }] },
          },
        ],
      });
      expectSchemaError(await api.postCreate(both), '$.details[0]', 'invalid', 'exactly one of device or device_code is required');
    });
  });

  describe('Service logic', () => {
    it('creates: the job links the dispense and GET shows it in_progress as the server filled it', async () => {
      const deviceRequest = fresh();
      const id = newId();
      const res = await api.create(createBody(id, basedOn(deviceRequest)));
      expectProcessed(res, id);
      const shown = (await api.get(id)).body.data;
      expect(shown).toMatchObject({
        id,
        status: 'in_progress',
        based_on: { identifier: { value: deviceRequest } },
        subject: { identifier: { value: ids.patient } },
        performer: { identifier: { value: ids.employee }, display_value: 'Коваленко Олена Петрівна' },
        location: { identifier: { value: ids.division }, display_value: 'Аптечний пункт' },
        performer_legal_entity: { identifier: { value: ids.legalEntity }, display_value: 'Аптека №1' },
        program: { identifier: { value: ids.program }, display_value: 'Доступні медичні вироби' },
        primary_source: true,
        note: 'Видано за рецептом',
        details: [
          {
            device: { identifier: { value: ids.definition } },
            quantity: { value: 10, system: 'device_unit', code: 'piece', unit: 'шт' },
            sell_price: 18.65,
            discount_amount: 150,
          },
        ],
        inserted_by: ids.user,
        updated_by: ids.user,
      });
      expect(shown).not.toHaveProperty('status_reason');
      expect(shown).not.toHaveProperty('verification_code');
      expect(shown.inserted_at).toBe(shown.updated_at);
    });

    it('creates for a classification prescription (20 packs of 10) with a program device, and for a request without a program', async () => {
      const byClass = newId();
      const body = createBody(byClass, {
        ...basedOn(freshByClassification()),
        verification_code: '5678',
        details: [detail(ids.packDefinition, { value: 20, code: 'pack' }, { program_device: ref('program_device', ids.definition) })],
      });
      expectProcessed(await api.create(body), byClass);
      expect((await api.get(byClass)).body.data.details[0]).toMatchObject({
        quantity: { value: 20, code: 'pack', unit: 'уп' },
        program_device: { identifier: { value: ids.definition } },
      });

      const noProgram = newId();
      const noProgramBody = createBody(noProgram, { ...basedOn(freshWithoutProgram()), program: undefined, verification_code: undefined });
      expectProcessed(await api.create(noProgramBody), noProgram);
      expect((await api.get(noProgram)).body.data).not.toHaveProperty('program');
    });
  });

  describe('Validate legal entity', () => {
    it("409 'client_id refers to legal entity that is not active' for an inactive and for an unknown legal entity", async () => {
      const inactive = await createAs({}, { client_id: ids.inactiveLegalEntity });
      expectJobConflict(inactive, 'client_id refers to legal entity that is not active');
      expectJobConflict(await createAs({}, { client_id: ids.unknownLegalEntity }), 'client_id refers to legal entity that is not active');
      await expectNotCreated(inactive.dispenseId);
    });
  });

  describe('Validate patient', () => {
    it("404 'not found' for a patient that does not exist", async () => {
      const res = await createAs({}, {}, newId());
      expectJobNotFound(res);
      await expectNotCreated(res.dispenseId);
    });

    it("409 'Patient is not active'", async () => {
      expectJobConflict(await createAs({}, {}, ids.inactivePatient), 'Patient is not active');
    });

    it("409 'Patient is not verified'", async () => {
      expectJobConflict(await createAs({}, {}, ids.unverifiedPatient), 'Patient is not verified');
    });
  });

  describe('Validate performer', () => {
    const entry = '$.performer.identifier.value';
    // A user without a party is refused earlier, by the employment check (employment.http.test.ts).
    it("422 'User is not allowed to create device dispense for the performer': another user's employee, an unknown one", async () => {
      const message = 'User is not allowed to create device dispense for the performer';
      expectJobUnprocessable(await createAs({ performer: ref('employee', ids.otherUsersEmployee) }), message, entry);
      expectJobUnprocessable(await createAs({ performer: ref('employee', newId()) }), message, entry);
    });

    it("422 'Employee is not active ' (with the spec's trailing space)", async () => {
      expectJobUnprocessable(await createAs({ performer: ref('employee', ids.inactiveEmployee) }), 'Employee is not active ', entry);
    });

    it("422 'Employee does not belong to legal entity from token'", async () => {
      expectJobUnprocessable(
        await createAs({ performer: ref('employee', ids.employeeOfOtherLegalEntity) }),
        'Employee does not belong to legal entity from token',
        entry,
      );
    });
  });

  describe('Validate division', () => {
    it('409 "Division not found"', async () => {
      expectJobConflict(await createAs({ location: ref('division', newId()) }), 'Division not found');
    });
    it('409 "Division is not active"', async () => {
      expectJobConflict(await createAs({ location: ref('division', ids.inactiveDivision) }), 'Division is not active');
    });
    it('409 "Division does not belong to user\'s legal entity"', async () => {
      expectJobConflict(await createAs({ location: ref('division', ids.otherLegalEntityDivision) }), "Division does not belong to user's legal entity");
    });
    it('409 "Division is not verified in DLS" (DEVICE_DISPENSE_DIVISION_DLS_VERIFY on)', async () => {
      expectJobConflict(await createAs({ location: ref('division', ids.dlsUnverifiedDivision) }), 'Division is not verified in DLS');
    });
  });

  describe('Validate device request', () => {
    const entry = '$.based_on.identifier.value';
    it("422 'Device request not found' for an unknown request and for another patient's", async () => {
      expectJobUnprocessable(await createAs(basedOn(newId())), 'Device request not found', entry);
      expectJobUnprocessable(await createAs(basedOn(ids.otherPatientRequest)), 'Device request not found', entry);
    });

    it("409 'Only device request with intent = 'order' can be dispensed'", async () => {
      expectJobConflict(await createAs(basedOn(ids.planRequest)), "Only device request with intent = 'order' can be dispensed");
    });

    it("409 'Device request is not active' for a revoked request", async () => {
      expectJobConflict(await createAs(basedOn(ids.inactiveRequest)), 'Device request is not active');
    });

    it("409 'Device request is not active' for a request (with a quantity) that a completed dispense completed", async () => {
      const deviceRequest = fresh();
      await api.complete(await api.createInProgress(deviceRequest));
      expectJobConflict(await createAs(basedOn(deviceRequest)), 'Device request is not active');
    });

    it("409 'Device request is expired for dispense'", async () => {
      expectJobConflict(await createAs(basedOn(ids.expiredRequest)), 'Device request is expired for dispense');
    });
  });

  describe('Validate program', () => {
    const mismatch = "Program in dispense doesn't match the one in device request";
    it(`409 '${mismatch}': another program, no program, a program for a request without one`, async () => {
      expectJobConflict(await createAs({ program: ref('medical_program', ids.otherProgram) }), mismatch);
      expectJobConflict(await createAs({ program: undefined }), mismatch);
      expectJobConflict(await createAs({ ...basedOn(freshWithoutProgram()), verification_code: undefined }), mismatch);
    });

    it("409 'Device request can not be dispensed. Invoke qualify dispense request API to get detailed info' for an inactive program", async () => {
      const res = await createAs({ ...basedOn(ids.inactiveProgramRequest), program: ref('medical_program', ids.inactiveProgram) });
      expectJobConflict(res, 'Device request can not be dispensed. Invoke qualify dispense request API to get detailed info');
    });
  });

  describe('Validate other active dispenses', () => {
    it('422 "Other active device dispense already exist." while another dispense of the request is in_progress', async () => {
      const deviceRequest = fresh();
      const first = await api.createInProgress(deviceRequest);
      const res = await createAs(basedOn(deviceRequest));
      expectJobUnprocessable(res, 'Other active device dispense already exist.', '$.based_on.identifier.value');
      await expectNotCreated(res.dispenseId);
      // Once the first is stopped (or marked in error), the request may be dispensed again.
      await api.stop(first.id);
      const again = await createAs(basedOn(deviceRequest));
      expectProcessed(again, again.dispenseId);
      await api.markInError((await api.get(again.dispenseId)).body.data);
      const third = await createAs(basedOn(deviceRequest));
      expectProcessed(third, third.dispenseId);
    });
  });

  describe('Validate details', () => {
    it("422 'Only device definition is allowed for dispense' for device_code, or a device that is not a device_definition", async () => {
      const message = 'Only device definition is allowed for dispense';
      const entry = '$.details[0].device.identifier.type.coding[0].code';
      const byCode = {
        device_code: { coding: [{ system: 'device_definition_classification_type', code: '30221' }] },
        quantity: { value: 10, system: 'device_unit', code: 'piece' },
      };
      expectJobUnprocessable(await createAs({ details: [byCode] }), message, entry);
      expectJobUnprocessable(
        await createAs({ details: [{ ...detail(ids.definition, { value: 10, code: 'piece' }), device: ref('device', ids.definition) }] }),
        message,
        entry,
      );
    });

    it("422 'Device definition not found' for an unknown and for an inactive definition", async () => {
      const entry = '$.details[0].device.identifier.value';
      expectJobUnprocessable(await createAs({ details: [detail(newId(), { value: 10, code: 'piece' })] }), 'Device definition not found', entry);
      expectJobUnprocessable(await createAs({ details: [detail(ids.inactiveDefinition, { value: 10, code: 'piece' })] }), 'Device definition not found', entry);
    });

    it("422 'Dispensed device doesn’t match with prescribed device' (prescribed by definition, and by classification)", async () => {
      const message = 'Dispensed device doesn’t match with prescribed device';
      const entry = '$.details[0].device.identifier.value';
      expectJobUnprocessable(await createAs({ details: [detail(ids.otherClassDefinition, { value: 10, code: 'piece' })] }), message, entry);
      const byClass = { ...basedOn(ids.classificationRequest), verification_code: '5678', details: [detail(ids.definition, { value: 20, code: 'pack' })] };
      expectJobUnprocessable(await createAs(byClass), message, entry);
    });

    it("422 'Dispensed packaging unit doesn’t match with prescribed packaging unit'", async () => {
      const message = 'Dispensed packaging unit doesn’t match with prescribed packaging unit';
      expectJobUnprocessable(await createAs({ details: [detail(ids.definition, { value: 10, code: 'pack' })] }), message, '$.details[0].quantity.code');
      const byClass = { ...basedOn(ids.classificationRequest), verification_code: '5678', details: [detail(ids.packDefinition, { value: 20, code: 'piece' })] };
      expectJobUnprocessable(await createAs(byClass), message, '$.details[0].quantity.code');
    });

    it("422 'The quantity must be divisible to packaging_count of prescribed Device Definition' (15 of a pack of 10)", async () => {
      const body = { ...basedOn(ids.classificationRequest), verification_code: '5678', details: [detail(ids.packDefinition, { value: 15, code: 'pack' })] };
      expectJobUnprocessable(
        await createAs(body),
        'The quantity must be divisible to packaging_count of prescribed Device Definition',
        '$.details[0].quantity.value',
      );
    });

    it("422 'Dispensed quantity exceeds the prescribed quantity' on the detail where the sum passes it (10 prescribed)", async () => {
      const message = 'Dispensed quantity exceeds the prescribed quantity';
      expectJobUnprocessable(await createAs({ details: [detail(ids.definition, { value: 1000000, code: 'piece' })] }), message, '$.details[0].quantity.value');
      const details = [detail(ids.definition, { value: 6, code: 'piece' }), detail(ids.definition, { value: 5, code: 'piece' })];
      expectJobUnprocessable(await createAs({ details }), message, '$.details[1].quantity.value');
      // Exactly the prescribed quantity, in two details, is allowed; a request without a quantity is exempt.
      const exact = await createAs({ details: [detail(ids.definition, { value: 4, code: 'piece' }), detail(ids.definition, { value: 6, code: 'piece' })] });
      expectProcessed(exact, exact.dispenseId);
      const unbounded = await createAs({
        ...basedOn(freshWithoutProgram()),
        program: undefined,
        verification_code: undefined,
        details: [detail(ids.definition, { value: 500, code: 'piece' })],
      });
      expectProcessed(unbounded, unbounded.dispenseId);
    });

    it("422 'when_handed_over is not within the device request dispense period' for a hand-over given at creation that is not now", async () => {
      const message = 'when_handed_over is not within the device request dispense period';
      for (const when of ['0001-01-01T00:00:00Z', new Date(Date.now() + DAY_MS).toISOString()])
        expectJobUnprocessable(await createAs({ when_handed_over: when }), message, '$.when_handed_over');
      const now = await createAs({ when_handed_over: new Date().toISOString() });
      expectProcessed(now, now.dispenseId);
    });

    it('names the detail that breaks a rule: the second one here', async () => {
      const details = [detail(ids.definition, { value: 5, code: 'piece' }), detail(ids.inactiveDefinition, { value: 5, code: 'piece' })];
      expectJobUnprocessable(await createAs({ details }), 'Device definition not found', '$.details[1].device.identifier.value');
    });
  });

  describe('Validate program device', () => {
    it("422 'Invalid code. Expected 'program_device'' when program_device is not a program_device reference", async () => {
      const details = [detail(ids.definition, { value: 10, code: 'piece' }, { program_device: ref('device_definition', newId()) })];
      expectJobUnprocessable(
        await createAs({ details }),
        "Invalid code. Expected 'program_device'",
        '$.details[0].program_device.identifier.type.coding[0].code',
      );
    });
  });

  describe('Validate verification code', () => {
    it("403 'Incorrect code' for a wrong or a missing verification code (job data.error is the message)", async () => {
      const wrong = await createAs({ verification_code: '0000' });
      expectJobForbidden(wrong, 'Incorrect code');
      await expectNotCreated(wrong.dispenseId);
      expectJobForbidden(await createAs({ verification_code: undefined }), 'Incorrect code');
    });
  });

  describe('Reusing an id', () => {
    it("409 'Device dispense with such id already exists' for the id of an existing dispense (on another request)", async () => {
      const existing = await api.createInProgress(fresh());
      const res = await createAs({ note: 'інший' }, {}, undefined, existing.id);
      expectJobConflict(res, 'Device dispense with such id already exists');
      expect((await api.get(existing.id)).body.data).toMatchObject({ note: existing.note, based_on: existing.based_on, status: 'in_progress' });
    });
  });

  describe("the method page's order: the first broken rule answers", () => {
    it('inactive legal entity and an unknown patient → legal entity 409', async () => {
      expectJobConflict(await createAs({}, { client_id: ids.inactiveLegalEntity }, newId()), 'client_id refers to legal entity that is not active');
    });

    it("unknown patient and another user's employee → 404", async () => {
      expectJobNotFound(await createAs({ performer: ref('employee', ids.otherUsersEmployee) }, {}, newId()));
    });

    it('unverified patient and an unknown division → patient', async () => {
      expectJobConflict(await createAs({ location: ref('division', newId()) }, {}, ids.unverifiedPatient), 'Patient is not verified');
    });

    it('inactive employee and an unknown division → performer', async () => {
      expectJobUnprocessable(
        await createAs({ performer: ref('employee', ids.inactiveEmployee), location: ref('division', newId()) }),
        'Employee is not active ',
      );
    });

    it('DLS-unverified division and an unknown device request → division', async () => {
      expectJobConflict(await createAs({ location: ref('division', ids.dlsUnverifiedDivision), ...basedOn(newId()) }), 'Division is not verified in DLS');
    });

    it('expired request and another program → expired', async () => {
      expectJobConflict(
        await createAs({ ...basedOn(ids.expiredRequest), program: ref('medical_program', ids.otherProgram) }),
        'Device request is expired for dispense',
      );
    });

    it('another program while another dispense is active → program', async () => {
      const deviceRequest = fresh();
      await api.createInProgress(deviceRequest);
      expectJobConflict(
        await createAs({ ...basedOn(deviceRequest), program: ref('medical_program', ids.otherProgram) }),
        "Program in dispense doesn't match the one in device request",
      );
    });

    it('another active dispense and a device_code detail → other active dispense', async () => {
      const deviceRequest = fresh();
      await api.createInProgress(deviceRequest);
      const byCode = {
        device_code: { coding: [{ system: 'device_definition_classification_type', code: '30221' }] },
        quantity: { value: 10, system: 'device_unit', code: 'piece' },
      };
      expectJobUnprocessable(await createAs({ ...basedOn(deviceRequest), details: [byCode] }), 'Other active device dispense already exist.');
    });

    it('other classification, a wrong program_device and a wrong code → details', async () => {
      const details = [detail(ids.otherClassDefinition, { value: 10, code: 'piece' }, { program_device: ref('device', newId()) })];
      expectJobUnprocessable(await createAs({ details, verification_code: '0000' }), 'Dispensed device doesn’t match with prescribed device');
    });

    it('a wrong program_device and a wrong verification code → program device', async () => {
      const details = [detail(ids.definition, { value: 10, code: 'piece' }, { program_device: ref('device', newId()) })];
      expectJobUnprocessable(await createAs({ details, verification_code: '0000' }), "Invalid code. Expected 'program_device'");
    });
  });

  describe("within one group of checks, the page's order", () => {
    it('patient inactive and not verified → "Patient is not active"', async () => {
      expectJobConflict(await createAs({}, {}, both.inactiveUnverifiedPatient), 'Patient is not active');
    });

    it("performer: another user's inactive employee → 'User is not allowed…'; an inactive employee of another legal entity → 'Employee is not active '", async () => {
      const entry = '$.performer.identifier.value';
      expectJobUnprocessable(
        await createAs({ performer: ref('employee', both.otherUsersInactiveEmployee) }),
        'User is not allowed to create device dispense for the performer',
        entry,
      );
      expectJobUnprocessable(await createAs({ performer: ref('employee', both.inactiveEmployeeOfOtherLegalEntity) }), 'Employee is not active ', entry);
    });

    it('division: inactive of another legal entity → not active; DLS-unverified of another legal entity → does not belong', async () => {
      expectJobConflict(await createAs({ location: ref('division', both.inactiveDivisionOfOtherLegalEntity) }), 'Division is not active');
      expectJobConflict(
        await createAs({ location: ref('division', both.dlsUnverifiedDivisionOfOtherLegalEntity) }),
        "Division does not belong to user's legal entity",
      );
    });

    it("device request: another patient's plan → not found; revoked plan → intent; revoked and expired → not active", async () => {
      expectJobUnprocessable(await createAs(basedOn(both.otherPatientPlanRequest)), 'Device request not found', '$.based_on.identifier.value');
      expectJobConflict(await createAs(basedOn(both.revokedPlanRequest)), "Only device request with intent = 'order' can be dispensed");
      expectJobConflict(await createAs(basedOn(both.revokedExpiredRequest)), 'Device request is not active');
    });

    it('program: another program on a request whose program is inactive → mismatch', async () => {
      expectJobConflict(
        await createAs({ ...basedOn(ids.inactiveProgramRequest), program: ref('medical_program', ids.otherProgram) }),
        "Program in dispense doesn't match the one in device request",
      );
    });

    it('details: inactive of another class → not found; other class in another unit → no match; wrong unit and not divisible → unit', async () => {
      expectJobUnprocessable(
        await createAs({ details: [detail(both.inactiveOtherClassDefinition, { value: 10, code: 'piece' })] }),
        'Device definition not found',
      );
      expectJobUnprocessable(
        await createAs({ details: [detail(ids.otherClassDefinition, { value: 10, code: 'pack' })] }),
        'Dispensed device doesn’t match with prescribed device',
      );
      const byClass = { ...basedOn(ids.classificationRequest), verification_code: '5678', details: [detail(ids.packDefinition, { value: 15, code: 'piece' })] };
      expectJobUnprocessable(await createAs(byClass), 'Dispensed packaging unit doesn’t match with prescribed packaging unit');
    });
  });

  describe('device_dispense_ttl (moves the clock: keep it last)', () => {
    it('an in_progress dispense older than device_dispense_ttl_days no longer blocks a new one', async () => {
      const deviceRequest = fresh();
      await api.createInProgress(deviceRequest);
      t.advanceClock((data.config.device_dispense_ttl_days - 1) * DAY_MS);
      expectJobUnprocessable(await createAs(basedOn(deviceRequest)), 'Other active device dispense already exist.');
      t.advanceClock(2 * DAY_MS);
      const res = await createAs(basedOn(deviceRequest));
      expectProcessed(res, res.dispenseId);
    });
  });
});
