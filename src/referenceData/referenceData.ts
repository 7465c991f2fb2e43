/**
 * Reference data owned by other ЕСОЗ registries (legal entities, parties, employees, device requests…):
 * read, never changed here. Loaded once at start from REFERENCE_DATA_FILE (or the demo file) and
 * validated strictly, so a typo in a key is a clear start-up error rather than a silent default.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { calendarDateSchema } from '../domain/shared/calendarDate.js';

const id = z.string().min(1);
const isoDate = calendarDateSchema;

const legalEntity = z.strictObject({
  id,
  type: z.string().min(1),
  status: z.string().min(1),
  name: z.string(),
  edrpou: z.string(),
});
const party = z.strictObject({
  id,
  tax_id: z.string(),
  first_name: z.string(),
  last_name: z.string(),
  second_name: z.string().optional(),
});
const user = z.strictObject({ id, party_id: id });
const employee = z.strictObject({
  id,
  party_id: id,
  legal_entity_id: id,
  status: z.string(),
  is_active: z.boolean(),
  employee_type: z.string(),
});
const division = z.strictObject({ id, legal_entity_id: id, status: z.string(), name: z.string(), dls_verified: z.boolean() });
const person = z.strictObject({ id, status: z.string(), verification_status: z.string() });
const deviceDefinition = z.strictObject({
  id,
  is_active: z.boolean(),
  classification_type: z.string(),
  packaging_unit: z.string(),
  packaging_count: z.number().positive(),
});
const medicalProgram = z.strictObject({ id, is_active: z.boolean(), name: z.string() });
const deviceRequest = z.strictObject({
  id,
  subject_id: id,
  intent: z.string(),
  status: z.string(),
  dispense_valid_to: isoDate,
  program_id: id.nullable(),
  // Prescribed as a device definition (Reference) or as a classification type (CodeableConcept).
  code: z.union([z.strictObject({ device_definition_id: id }), z.strictObject({ classification_type: z.string().min(1) })]),
  quantity: z.strictObject({ value: z.number().positive(), code: z.string() }).nullable(),
  verification_code: z.string().nullable(),
});
const license = z.strictObject({
  id,
  legal_entity_id: id,
  is_primary: z.boolean(),
  type: z.string().min(1),
  license_number: z.string().nullable(),
  issued_by: z.string(),
  issued_date: isoDate,
  active_from_date: isoDate,
  expiry_date: isoDate.nullable(),
  order_no: z.string(),
  what_licensed: z.string().nullable(),
  is_active: z.boolean(),
});

export const referenceDataSchema = z.strictObject({
  config: z.strictObject({
    me_allowed_transactions_le_types: z.array(z.string()),
    device_dispense_ttl_days: z.number().int().positive(),
    /** DEVICE_DISPENSE_DIVISION_DLS_VERIFY of the Create spec: require dls_verified divisions. */
    device_dispense_division_dls_verify: z.boolean().default(false),
  }),
  dictionaries: z
    .record(z.string(), z.union([z.array(z.string()), z.record(z.string(), z.string())]))
    .refine((d) => ['device_dispense_mark_in_error_reasons', 'LICENSE_TYPE'].every((name) => name in d), {
      message: 'must hold device_dispense_mark_in_error_reasons and LICENSE_TYPE',
    }),
  legal_entities: z.array(legalEntity),
  parties: z.array(party),
  users: z.array(user),
  employees: z.array(employee),
  divisions: z.array(division),
  persons: z.array(person),
  device_definitions: z.array(deviceDefinition),
  medical_programs: z.array(medicalProgram),
  device_requests: z.array(deviceRequest),
  licenses: z.array(license),
});

export type ReferenceDataFile = z.infer<typeof referenceDataSchema>;
export type LegalEntity = z.infer<typeof legalEntity>;
export type Party = z.infer<typeof party>;
export type Employee = z.infer<typeof employee>;
export type Division = z.infer<typeof division>;
export type Person = z.infer<typeof person>;
export type DeviceDefinition = z.infer<typeof deviceDefinition>;
export type MedicalProgram = z.infer<typeof medicalProgram>;
export type DeviceRequest = z.infer<typeof deviceRequest>;
export type ImportedLicense = z.infer<typeof license>;

const byId = <T extends { id: string }>(items: T[]) => new Map(items.map((item) => [item.id, item]));

export type ReferenceData = ReturnType<typeof indexReferenceData>;

export function indexReferenceData(file: ReferenceDataFile) {
  const legalEntities = byId(file.legal_entities);
  const parties = byId(file.parties);
  const users = byId(file.users);
  const employees = byId(file.employees);
  const divisions = byId(file.divisions);
  const persons = byId(file.persons);
  const deviceDefinitions = byId(file.device_definitions);
  const medicalPrograms = byId(file.medical_programs);
  const deviceRequests = byId(file.device_requests);
  const employeesByParty = new Map<string, Employee[]>();
  for (const e of file.employees) employeesByParty.set(e.party_id, [...(employeesByParty.get(e.party_id) ?? []), e]);
  return {
    file,
    config: file.config,
    legalEntity: (leId: string) => legalEntities.get(leId),
    party: (partyId: string) => parties.get(partyId),
    partyOfUser: (userId: string) => {
      const found = users.get(userId);
      return found ? parties.get(found.party_id) : undefined;
    },
    employee: (employeeId: string) => employees.get(employeeId),
    employeesOfParty: (partyId: string): readonly Employee[] => employeesByParty.get(partyId) ?? [],
    division: (divisionId: string) => divisions.get(divisionId),
    person: (personId: string) => persons.get(personId),
    deviceDefinition: (definitionId: string) => deviceDefinitions.get(definitionId),
    medicalProgram: (programId: string) => medicalPrograms.get(programId),
    deviceRequest: (requestId: string) => deviceRequests.get(requestId),
    /** Codes of a dictionary (a list, or the keys of a code → description map). */
    dictionaryCodes: (name: string): string[] => {
      const dictionary = file.dictionaries[name];
      return Array.isArray(dictionary) ? dictionary : Object.keys(dictionary ?? {});
    },
    /** Description of a code, when the dictionary is a map (e.g. device_unit: piece → шт). */
    dictionaryDescription: (name: string, code: string): string | undefined => {
      const dictionary = file.dictionaries[name];
      return dictionary && !Array.isArray(dictionary) ? dictionary[code] : undefined;
    },
  };
}

export class ReferenceDataError extends Error {}

export function parseReferenceData(json: unknown, source: string): ReferenceData {
  const result = referenceDataSchema.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const where = issue.path.length ? issue.path.join('.') : '(root)';
      return issue.code === 'unrecognized_keys' ? `${where}: unknown key(s) ${issue.keys.join(', ')}` : `${where}: ${issue.message}`;
    });
    throw new ReferenceDataError(`Invalid reference data in ${source}: ${problems.slice(0, 10).join('; ')}`);
  }
  return indexReferenceData(result.data);
}

export async function loadReferenceDataFile(path: string): Promise<ReferenceData> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ReferenceDataError(`Cannot read REFERENCE_DATA_FILE ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ReferenceDataError(`REFERENCE_DATA_FILE ${path} is not valid JSON: ${(error as Error).message}`);
  }
  return parseReferenceData(json, path);
}
