/**
 * Reference records: the copy this registry keeps of what other ЕСОЗ registries own (legal entities,
 * parties and users, employees, divisions, persons, device definitions, medical programs, device
 * requests, dictionaries and config). One schema per kind, holding the fields the checks use.
 *
 * Unknown fields are dropped, not stored (zod's default): the registry keeps the least personal data
 * its checks need (a person from MPI is its id, status and verification status, nothing else).
 * Every record carries `version` (≥ 1, raised by every upstream change; absent means 1).
 */
import { z } from 'zod';
import { calendarDateSchema } from '../domain/shared/calendarDate.js';
import type { JsonValue } from '../eventStore/eventStore.js';
import { fastCanonicalJson } from '../eventStore/hashChain.js';

const id = z.string().min(1).max(255);
const version = z.number().int().min(1).max(2_147_483_647).default(1);

// Fields in code-point order, so a parsed record is already in canonical (RFC 8785) key order: its
// digest and stored text are one JSON.stringify (a bulk load's largest cost per line was sorting keys).
const legalEntity = z.object({ edrpou: z.string(), id, name: z.string(), status: z.string().min(1), type: z.string().min(1), version });
const party = z.object({
  first_name: z.string(),
  id,
  last_name: z.string(),
  second_name: z.string().optional(),
  tax_id: z.string(),
  version,
});
const user = z.object({ id, party_id: id, version });
const employee = z.object({
  employee_type: z.string(),
  id,
  is_active: z.boolean(),
  legal_entity_id: id,
  party_id: id,
  status: z.string(),
  version,
});
const division = z.object({ dls_verified: z.boolean(), id, legal_entity_id: id, name: z.string(), status: z.string(), version });
const person = z.object({ id, status: z.string(), verification_status: z.string(), version });
const deviceDefinition = z.object({
  classification_type: z.string(),
  id,
  is_active: z.boolean(),
  packaging_count: z.number().positive(),
  packaging_unit: z.string(),
  version,
});
const medicalProgram = z.object({ id, is_active: z.boolean(), name: z.string(), version });
const deviceRequest = z
  .object({
    // Prescribed as a device definition (Reference) or as a classification type (CodeableConcept).
    code: z.union([z.strictObject({ device_definition_id: id }), z.strictObject({ classification_type: z.string().min(1) })]),
    /** Optional start of the dispense period (the end is dispense_valid_to). */
    dispense_valid_from: calendarDateSchema.optional(),
    dispense_valid_to: calendarDateSchema,
    id,
    intent: z.string(),
    program_id: id.nullable(),
    quantity: z.strictObject({ code: z.string(), value: z.number().positive() }).nullable(),
    status: z.string(),
    subject_id: id,
    verification_code: z.string().nullable(),
    version,
  })
  .refine((r) => r.dispense_valid_from === undefined || r.dispense_valid_from <= r.dispense_valid_to, {
    message: 'dispense_valid_from must not be after dispense_valid_to',
    path: ['dispense_valid_from'],
  });
const dictionary = z.object({
  name: id,
  // A list of codes, or a code → description map (e.g. device_unit: piece → шт).
  values: z.union([z.array(z.string()), z.record(z.string(), z.string())]),
  version,
});
/** The config entries the commands read, each with its type (another name is stored as given). */
export const KNOWN_CONFIG = {
  me_allowed_transactions_le_types: z.array(z.string()),
  device_dispense_ttl_days: z.number().int().positive(),
  /** DEVICE_DISPENSE_DIVISION_DLS_VERIFY of the Create spec: require dls_verified divisions. */
  device_dispense_division_dls_verify: z.boolean(),
} as const;
const configEntry = z.object({ name: id, version, value: z.json() }).superRefine((entry, ctx) => {
  const known = KNOWN_CONFIG[entry.name as keyof typeof KNOWN_CONFIG];
  const checked = known?.safeParse(entry.value);
  if (checked && !checked.success) ctx.addIssue({ code: 'custom', path: ['value'], message: `${entry.name}: ${checked.error.issues[0]!.message}` });
});

export const REFERENCE_SCHEMAS = {
  legal_entities: legalEntity,
  parties: party,
  users: user,
  employees: employee,
  divisions: division,
  persons: person,
  device_definitions: deviceDefinition,
  medical_programs: medicalProgram,
  device_requests: deviceRequest,
  dictionaries: dictionary,
  config: configEntry,
} as const;

export type ReferenceKind = keyof typeof REFERENCE_SCHEMAS;
export const REFERENCE_KINDS = Object.keys(REFERENCE_SCHEMAS) as ReferenceKind[];
export const referenceKindSchema = z.enum(REFERENCE_KINDS as [ReferenceKind, ...ReferenceKind[]]);

export type LegalEntity = z.infer<typeof legalEntity>;
export type Party = z.infer<typeof party>;
export type User = z.infer<typeof user>;
export type Employee = z.infer<typeof employee>;
export type Division = z.infer<typeof division>;
export type Person = z.infer<typeof person>;
export type DeviceDefinition = z.infer<typeof deviceDefinition>;
export type MedicalProgram = z.infer<typeof medicalProgram>;
export type DeviceRequest = z.infer<typeof deviceRequest>;
export type Dictionary = z.infer<typeof dictionary>;
export type ConfigEntry = z.infer<typeof configEntry>;
export type ReferenceRecordOf<K extends ReferenceKind> = z.infer<(typeof REFERENCE_SCHEMAS)[K]>;
export type ReferenceRecord = ReferenceRecordOf<ReferenceKind>;

/** Dictionaries and config are named, the other kinds have ids. */
export const recordId = (kind: ReferenceKind, record: Record<string, unknown>): string =>
  String(kind === 'dictionaries' || kind === 'config' ? record.name : record.id);

/** The key a record is found by in its kind: `name` for dictionaries and config, else `id`. */
export const idField = (kind: ReferenceKind) => (kind === 'dictionaries' || kind === 'config' ? 'name' : 'id');

/** What a decision read: an auditor fetches each as of that version (GET /api/audit/reference/…). */
export type ReferenceUse = { kind: ReferenceKind; id: string; version: number };
export const referenceUseSchema = z.object({ kind: referenceKindSchema, id: z.string(), version: z.number().int() });

/** One validation problem of a record, as `field: message` (the first one). */
export function recordProblem(error: z.ZodError): { field: string; message: string } {
  const issue = error.issues[0]!;
  return { field: issue.path.length ? issue.path.join('.') : '(record)', message: issue.message };
}

/**
 * The record's canonical (RFC 8785) JSON. A parsed record of a kind with fixed fields is in key order
 * already (the schemas list them sorted: test/referenceData/records.test.ts holds them to it), so it is
 * one JSON.stringify; dictionaries and config hold free-form JSON and are sorted.
 */
export function canonicalRecordText(kind: ReferenceKind, record: ReferenceRecord): string {
  return kind === 'dictionaries' || kind === 'config' ? fastCanonicalJson(record as JsonValue) : JSON.stringify(record);
}
