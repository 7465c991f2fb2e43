/**
 * What one command reads of the reference data: every record it names, fetched together before its
 * checks run (one round trip at most, none when the cache holds them), then read synchronously in the
 * seed's order. A view never changes under its command: it is the data of one generation.
 */
import { z } from 'zod';
import { serviceUnavailable } from '../domain/shared/esozError.js';
import {
  KNOWN_CONFIG,
  type ConfigEntry,
  type DeviceDefinition,
  type DeviceRequest,
  type Dictionary,
  type Division,
  type Employee,
  type LegalEntity,
  type MedicalProgram,
  type Party,
  type Person,
  type ReferenceKind,
  type ReferenceRecord,
  type User,
} from './records.js';

/** The kinds a command names by id (users bring their party and the party's employees along). */
export type KeyedKind = Exclude<ReferenceKind, 'dictionaries' | 'config' | 'parties'>;
export type ViewRequest = Partial<Record<KeyedKind, readonly string[]>>;

export const keyOf = (kind: ReferenceKind, id: string) => `${kind}/${id}`;

/** What a lookup returns: each named record (null: not there), and the employees of each party read. */
export type LoadedReference = {
  records: Map<string, ReferenceRecord | null>;
  employeesOfParty: Map<string, readonly Employee[]>;
  dictionaries: ReadonlyMap<string, Dictionary>;
  config: ReadonlyMap<string, ConfigEntry>;
};

const commandConfigSchema = z.object({
  me_allowed_transactions_le_types: KNOWN_CONFIG.me_allowed_transactions_le_types,
  device_dispense_ttl_days: KNOWN_CONFIG.device_dispense_ttl_days,
  device_dispense_division_dls_verify: KNOWN_CONFIG.device_dispense_division_dls_verify.default(false),
});
export type CommandConfig = z.infer<typeof commandConfigSchema>;

/**
 * The config the commands need; missing entries are the operator's to load, so the command answers
 * 503 (retry later) rather than deciding on a default nobody chose.
 */
export function commandConfig(entries: ReadonlyMap<string, ConfigEntry>): CommandConfig {
  const parsed = commandConfigSchema.safeParse(Object.fromEntries([...entries].map(([name, entry]) => [name, entry.value])));
  if (!parsed.success) {
    const missing = parsed.error.issues.map((issue) => issue.path.join('.')).join(', ');
    throw Object.assign(serviceUnavailable(), { cause: new Error(`reference config not loaded: ${missing}`) });
  }
  return parsed.data;
}

export type ReferenceView = ReturnType<typeof createReferenceView>;

export function createReferenceView(loaded: LoadedReference) {
  const get = <T extends ReferenceRecord>(kind: ReferenceKind, id: string): T | undefined => {
    const key = keyOf(kind, id);
    // A record the command did not name is a programming error, never "not found".
    if (!loaded.records.has(key)) throw new Error(`reference view: ${key} was not requested`);
    return (loaded.records.get(key) ?? undefined) as T | undefined;
  };
  let config: CommandConfig | undefined;
  const dictionary = (name: string) => loaded.dictionaries.get(name)?.values;
  return {
    get config(): CommandConfig {
      return (config ??= commandConfig(loaded.config));
    },
    legalEntity: (id: string) => get<LegalEntity>('legal_entities', id),
    party: (id: string) => get<Party>('parties', id),
    partyOfUser: (userId: string): Party | undefined => {
      const user = get<User>('users', userId);
      return user ? get<Party>('parties', user.party_id) : undefined;
    },
    employeesOfParty: (partyId: string): readonly Employee[] => {
      const found = loaded.employeesOfParty.get(partyId);
      if (!found) throw new Error(`reference view: employees of party ${partyId} were not requested`);
      return found;
    },
    /** The user record itself (undefined: the reference data does not know the user). */
    user: (id: string) => get<User>('users', id),
    employee: (id: string) => get<Employee>('employees', id),
    division: (id: string) => get<Division>('divisions', id),
    person: (id: string) => get<Person>('persons', id),
    deviceDefinition: (id: string) => get<DeviceDefinition>('device_definitions', id),
    medicalProgram: (id: string) => get<MedicalProgram>('medical_programs', id),
    deviceRequest: (id: string) => get<DeviceRequest>('device_requests', id),
    /** Codes of a dictionary (a list, or the keys of a code → description map). */
    dictionaryCodes: (name: string): string[] => {
      const values = dictionary(name);
      return Array.isArray(values) ? values : Object.keys(values ?? {});
    },
    /** Description of a code, when the dictionary is a map (e.g. device_unit: piece → шт). */
    dictionaryDescription: (name: string, code: string): string | undefined => {
      const values = dictionary(name);
      return values && !Array.isArray(values) ? values[code] : undefined;
    },
  };
}
