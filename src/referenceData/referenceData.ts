/**
 * The reference-data file of earlier set-ups (REFERENCE_DATA_FILE, and the demo data): one JSON object
 * with an array per kind, a `config` object and a `dictionaries` object, plus the licences issued
 * before this registry (which enter as events, not reference data). At start it is loaded through the
 * same path as `cli reference import` (its records by the same version rules: a record without
 * `version` is version 1), so a changed record needs a higher version to replace the stored one.
 * Unknown keys are refused, so a typo is a clear start-up error rather than a silent default.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { calendarDateSchema } from '../domain/shared/calendarDate.js';
import { KNOWN_CONFIG, REFERENCE_SCHEMAS, type ReferenceKind, type ReferenceRecord } from './records.js';
import { checkRecord, importLineOf } from './referenceImport.js';
import type { ImportLine } from './referenceStore.js';

const isoDate = calendarDateSchema;
const license = z.strictObject({
  id: z.string().min(1),
  legal_entity_id: z.string().min(1),
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
export type ImportedLicense = z.infer<typeof license>;

const ARRAY_KINDS = [
  'legal_entities',
  'parties',
  'users',
  'employees',
  'divisions',
  'persons',
  'device_definitions',
  'medical_programs',
  'device_requests',
] as const satisfies readonly ReferenceKind[];

// Items of the array kinds: the record's own fields only (strict, unlike the bulk load, which drops others).
const S = REFERENCE_SCHEMAS;

export const referenceDataSchema = z.strictObject({
  config: z.strictObject({
    ...KNOWN_CONFIG,
    device_dispense_division_dls_verify: KNOWN_CONFIG.device_dispense_division_dls_verify.default(false),
  }),
  dictionaries: z
    .record(z.string(), z.union([z.array(z.string()), z.record(z.string(), z.string())]))
    .refine((d) => ['device_dispense_mark_in_error_reasons', 'LICENSE_TYPE'].every((name) => name in d), {
      message: 'must hold device_dispense_mark_in_error_reasons and LICENSE_TYPE',
    }),
  legal_entities: z.array(S.legal_entities.strict()),
  parties: z.array(S.parties.strict()),
  users: z.array(S.users.strict()),
  employees: z.array(S.employees.strict()),
  divisions: z.array(S.divisions.strict()),
  persons: z.array(S.persons.strict()),
  device_definitions: z.array(S.device_definitions.strict()),
  medical_programs: z.array(S.medical_programs.strict()),
  device_requests: z.array(S.device_requests.strict()),
  licenses: z.array(license),
});

/** The file as written (versions optional); `parseReferenceData` gives it with every default filled in. */
export type ReferenceDataFile = z.input<typeof referenceDataSchema>;
export type ParsedReferenceDataFile = z.output<typeof referenceDataSchema>;

export class ReferenceDataError extends Error {}

/** The file's records as import lines (numbered in file order), each checked as a bulk-load line is. */
export function legacyImportLines(file: ParsedReferenceDataFile, source: string): ImportLine[] {
  const lines: ImportLine[] = [];
  const add = (kind: ReferenceKind, value: unknown, where: string) => {
    try {
      lines.push(importLineOf(kind, checkRecord(kind, value, lines.length + 1), lines.length + 1));
    } catch (error) {
      throw new ReferenceDataError(`Invalid reference data in ${source}: ${where}: ${(error as Error).message.replace(/^line \d+: /, '')}`);
    }
  };
  for (const [name, value] of Object.entries(file.config)) add('config', { name, value }, `config.${name}`);
  for (const [name, values] of Object.entries(file.dictionaries)) add('dictionaries', { name, values }, `dictionaries.${name}`);
  for (const kind of ARRAY_KINDS) file[kind].forEach((item, i) => add(kind, item, `${kind}.${i}`));
  return lines;
}

export function parseReferenceData(json: unknown, source: string): ParsedReferenceDataFile {
  const result = referenceDataSchema.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const where = issue.path.length ? issue.path.join('.') : '(root)';
      return issue.code === 'unrecognized_keys' ? `${where}: unknown key(s) ${issue.keys.join(', ')}` : `${where}: ${issue.message}`;
    });
    throw new ReferenceDataError(`Invalid reference data in ${source}: ${problems.slice(0, 10).join('; ')}`);
  }
  legacyImportLines(result.data, source);
  return result.data;
}

export async function loadReferenceDataFile(path: string): Promise<ParsedReferenceDataFile> {
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

export type { ReferenceRecord };
