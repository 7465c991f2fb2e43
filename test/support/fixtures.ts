/**
 * Reference data for HTTP tests: one valid path through every Create check, plus a record that breaks
 * each check. `ids` names them all. Clone with `referenceData()` and change what a test needs.
 */
import type { ReferenceDataFile } from '../../src/referenceData/referenceData.js';

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

export const ids = {
  legalEntity: id(1),
  otherLegalEntity: id(2),
  wrongTypeLegalEntity: id(3),
  inactiveLegalEntity: id(4),
  unknownLegalEntity: id(5),
  /** Both of a type outside me_allowed_transactions_le_types and closed: the type is checked first. */
  closedWrongTypeLegalEntity: id(6),
  user: id(11),
  otherUser: id(12),
  /** Not in the users list at all: an unknown user. */
  userWithoutParty: id(13),
  /** Employment cases: a party with no employee; an employee of the other legal entity only; a dismissed one. */
  userWithoutEmployee: id(14),
  otherLegalEntityUser: id(15),
  dismissedUser: id(16),
  party: id(21),
  otherParty: id(22),
  partyWithoutEmployee: id(23),
  otherLegalEntityParty: id(24),
  dismissedParty: id(25),
  employee: id(31),
  otherUsersEmployee: id(32),
  inactiveEmployee: id(33),
  employeeOfOtherLegalEntity: id(34),
  onlyOtherLegalEntityEmployee: id(35),
  dismissedEmployee: id(36),
  division: id(41),
  inactiveDivision: id(42),
  otherLegalEntityDivision: id(43),
  dlsUnverifiedDivision: id(44),
  patient: id(51),
  inactivePatient: id(52),
  unverifiedPatient: id(53),
  otherPatient: id(54),
  definition: id(61),
  inactiveDefinition: id(62),
  otherClassDefinition: id(63),
  packDefinition: id(64),
  program: id(71),
  inactiveProgram: id(72),
  otherProgram: id(73),
  deviceRequest: id(81),
  planRequest: id(82),
  inactiveRequest: id(83),
  expiredRequest: id(84),
  otherPatientRequest: id(85),
  noProgramRequest: id(86),
  classificationRequest: id(87),
  inactiveProgramRequest: id(88),
  secondRequest: id(89),
  primaryLicense: id(91),
  otherPrimaryLicense: id(92),
} as const;

export const TAX_ID = '3067305998';
export const OTHER_TAX_ID = '2934805873';
/** Tax ids of the employment-case parties (their signatures pass the DRFO check, then employment fails). */
export const EMPLOYMENT_TAX_IDS = { withoutEmployee: '1111111118', otherLegalEntity: '2222222226', dismissed: '3333333334' } as const;

/** A device request of the fixture patient that passes every Create check (for the pharmacist's employee and program). */
export const deviceRequestRecord = (
  n: string,
  overrides: Partial<ReferenceDataFile['device_requests'][number]> = {},
): ReferenceDataFile['device_requests'][number] => ({
  id: n,
  subject_id: ids.patient,
  intent: 'order',
  status: 'active',
  dispense_valid_to: '2099-12-31',
  program_id: ids.program,
  code: { device_definition_id: ids.definition },
  quantity: { value: 10, code: 'piece' },
  verification_code: '1234',
  ...overrides,
});

export function referenceData(): ReferenceDataFile {
  return {
    config: { me_allowed_transactions_le_types: ['PHARMACY', 'PRIMARY_CARE'], device_dispense_ttl_days: 3, device_dispense_division_dls_verify: true },
    dictionaries: {
      device_dispense_mark_in_error_reasons: ['incorrect_patient', 'incorrect_device', 'incorrect_quantity'],
      LICENSE_TYPE: ['MSP', 'PHARMACY'],
      LEGAL_ENTITY_PHARMACY_ADDITIONAL_LICENSE_TYPES: ['PHARMACY'],
      LEGAL_ENTITY_PRIMARY_CARE_ADDITIONAL_LICENSE_TYPES: ['MSP'],
      device_unit: { piece: 'шт', pack: 'уп' },
    },
    legal_entities: [
      { id: ids.legalEntity, type: 'PHARMACY', status: 'ACTIVE', name: 'Аптека №1', edrpou: '38782323' },
      { id: ids.otherLegalEntity, type: 'PHARMACY', status: 'ACTIVE', name: 'Аптека №2', edrpou: '38782324' },
      { id: ids.wrongTypeLegalEntity, type: 'MSP_ONLY', status: 'ACTIVE', name: 'Інший тип', edrpou: '38782325' },
      { id: ids.inactiveLegalEntity, type: 'PHARMACY', status: 'CLOSED', name: 'Закрита аптека', edrpou: '38782326' },
      { id: ids.closedWrongTypeLegalEntity, type: 'MSP_ONLY', status: 'CLOSED', name: 'Закритий інший тип', edrpou: '38782327' },
    ],
    parties: [
      { id: ids.party, tax_id: TAX_ID, first_name: 'Олена', last_name: 'Коваленко', second_name: 'Петрівна' },
      { id: ids.otherParty, tax_id: OTHER_TAX_ID, first_name: 'Микола', last_name: 'Мельник' },
      { id: ids.partyWithoutEmployee, tax_id: EMPLOYMENT_TAX_IDS.withoutEmployee, first_name: 'Ірина', last_name: 'Бондар' },
      { id: ids.otherLegalEntityParty, tax_id: EMPLOYMENT_TAX_IDS.otherLegalEntity, first_name: 'Петро', last_name: 'Шевчук' },
      { id: ids.dismissedParty, tax_id: EMPLOYMENT_TAX_IDS.dismissed, first_name: 'Оксана', last_name: 'Ткаченко' },
    ],
    users: [
      { id: ids.user, party_id: ids.party },
      { id: ids.otherUser, party_id: ids.otherParty },
      { id: ids.userWithoutEmployee, party_id: ids.partyWithoutEmployee },
      { id: ids.otherLegalEntityUser, party_id: ids.otherLegalEntityParty },
      { id: ids.dismissedUser, party_id: ids.dismissedParty },
    ],
    employees: [
      { id: ids.employee, party_id: ids.party, legal_entity_id: ids.legalEntity, status: 'APPROVED', is_active: true, employee_type: 'PHARMACIST' },
      {
        id: ids.otherUsersEmployee,
        party_id: ids.otherParty,
        legal_entity_id: ids.legalEntity,
        status: 'APPROVED',
        is_active: true,
        employee_type: 'PHARMACIST',
      },
      { id: ids.inactiveEmployee, party_id: ids.party, legal_entity_id: ids.legalEntity, status: 'DISMISSED', is_active: false, employee_type: 'PHARMACIST' },
      {
        id: ids.employeeOfOtherLegalEntity,
        party_id: ids.party,
        legal_entity_id: ids.otherLegalEntity,
        status: 'APPROVED',
        is_active: true,
        employee_type: 'PHARMACIST',
      },
      {
        id: ids.onlyOtherLegalEntityEmployee,
        party_id: ids.otherLegalEntityParty,
        legal_entity_id: ids.otherLegalEntity,
        status: 'APPROVED',
        is_active: true,
        employee_type: 'PHARMACIST',
      },
      {
        id: ids.dismissedEmployee,
        party_id: ids.dismissedParty,
        legal_entity_id: ids.legalEntity,
        status: 'DISMISSED',
        is_active: false,
        employee_type: 'PHARMACIST',
      },
    ],
    divisions: [
      { id: ids.division, legal_entity_id: ids.legalEntity, status: 'ACTIVE', name: 'Аптечний пункт', dls_verified: true },
      { id: ids.inactiveDivision, legal_entity_id: ids.legalEntity, status: 'INACTIVE', name: 'Закритий пункт', dls_verified: true },
      { id: ids.otherLegalEntityDivision, legal_entity_id: ids.otherLegalEntity, status: 'ACTIVE', name: 'Чужий пункт', dls_verified: true },
      { id: ids.dlsUnverifiedDivision, legal_entity_id: ids.legalEntity, status: 'ACTIVE', name: 'Без DLS', dls_verified: false },
    ],
    persons: [
      { id: ids.patient, status: 'active', verification_status: 'VERIFIED' },
      { id: ids.inactivePatient, status: 'inactive', verification_status: 'VERIFIED' },
      { id: ids.unverifiedPatient, status: 'active', verification_status: 'NOT_VERIFIED' },
      { id: ids.otherPatient, status: 'active', verification_status: 'VERIFIED' },
    ],
    device_definitions: [
      { id: ids.definition, is_active: true, classification_type: '30221', packaging_unit: 'piece', packaging_count: 1 },
      { id: ids.inactiveDefinition, is_active: false, classification_type: '30221', packaging_unit: 'piece', packaging_count: 1 },
      { id: ids.otherClassDefinition, is_active: true, classification_type: '99999', packaging_unit: 'piece', packaging_count: 1 },
      { id: ids.packDefinition, is_active: true, classification_type: '30222', packaging_unit: 'pack', packaging_count: 10 },
    ],
    medical_programs: [
      { id: ids.program, is_active: true, name: 'Доступні медичні вироби' },
      { id: ids.inactiveProgram, is_active: false, name: 'Закрита програма' },
      { id: ids.otherProgram, is_active: true, name: 'Інша програма' },
    ],
    device_requests: [
      deviceRequestRecord(ids.deviceRequest),
      deviceRequestRecord(ids.secondRequest),
      deviceRequestRecord(ids.planRequest, { intent: 'plan' }),
      deviceRequestRecord(ids.inactiveRequest, { status: 'revoked' }),
      deviceRequestRecord(ids.expiredRequest, { dispense_valid_to: '2020-01-01' }),
      deviceRequestRecord(ids.otherPatientRequest, { subject_id: ids.otherPatient }),
      deviceRequestRecord(ids.noProgramRequest, { program_id: null, quantity: null, verification_code: null }),
      deviceRequestRecord(ids.classificationRequest, {
        code: { classification_type: '30222' },
        quantity: { value: 20, code: 'pack' },
        verification_code: '5678',
      }),
      deviceRequestRecord(ids.inactiveProgramRequest, { program_id: ids.inactiveProgram }),
    ],
    licenses: [
      {
        id: ids.primaryLicense,
        legal_entity_id: ids.legalEntity,
        is_primary: true,
        type: 'PHARMACY',
        license_number: 'АЕ 000001',
        issued_by: 'Держлікслужба',
        issued_date: '2020-01-01',
        active_from_date: '2020-01-01',
        expiry_date: null,
        order_no: 'ORD-1',
        what_licensed: 'роздрібна торгівля',
        is_active: true,
      },
      {
        id: ids.otherPrimaryLicense,
        legal_entity_id: ids.otherLegalEntity,
        is_primary: true,
        type: 'PHARMACY',
        license_number: 'АЕ 000002',
        issued_by: 'Держлікслужба',
        issued_date: '2020-01-01',
        active_from_date: '2020-01-01',
        expiry_date: '2099-01-01',
        order_no: 'ORD-2',
        what_licensed: 'роздрібна торгівля',
        is_active: true,
      },
    ],
  };
}

const ref = (code: string, value: string) => ({ identifier: { type: { coding: [{ system: 'eHealth/resources', code }] }, value } });

/** A Create request body that passes every check against `referenceData()`. */
export function createBody(dispenseId: string, overrides: Record<string, unknown> = {}) {
  return {
    id: dispenseId,
    status: 'in_progress',
    primary_source: true,
    performer: ref('employee', ids.employee),
    location: ref('division', ids.division),
    based_on: ref('device_request', ids.deviceRequest),
    program: ref('medical_program', ids.program),
    verification_code: '1234',
    note: 'Видано за рецептом',
    details: [
      {
        device: ref('device_definition', ids.definition),
        quantity: { value: 10, system: 'device_unit', code: 'piece' },
        sell_price: 18.65,
        discount_amount: 150,
      },
    ],
    ...overrides,
  };
}
export { ref };
