/**
 * The in-process cache of reference records every command reads through: bounded (least recently
 * used out first), negative entries too (a device request not there yet is asked for again only after
 * a change names it), and invalidated from the change log (referenceChanges.ts) by kind and id.
 *
 * `generation` moves with every invalidation. A view whose lookup ran while the generation moved is
 * read again whole, in one statement, so a command never decides on records of two generations; a
 * lookup's rows enter the cache only when no change came in between.
 */
import type { ConfigEntry, Dictionary, Employee, ReferenceKind, ReferenceRecord, User } from './records.js';
import { recordId } from './records.js';
import type { ChangeNote, LookupRequest, LookupResult, ReferenceStore } from './referenceStore.js';
import { createReferenceView, keyOf, type KeyedKind, type LoadedReference, type ReferenceView, type ViewRequest } from './referenceView.js';

const partyKey = (partyId: string) => `party_employees/${partyId}`;
type Entry = ReferenceRecord | null | readonly Employee[];

export type ReferenceCacheStats = { size: number; hits: number; misses: number; lookups: number; generation: number };

export function createReferenceCache(maxEntries: number) {
  const entries = new Map<string, Entry>();
  // Which cached party lists hold an employee: a change of the employee drops them (its old party too).
  const listsOfEmployee = new Map<string, Set<string>>();
  let settings: { dictionaries: Map<string, Dictionary>; config: Map<string, ConfigEntry> } | null = null;
  let generation = 0;

  const forgetList = (key: string) => {
    const list = entries.get(key) as readonly Employee[] | undefined;
    for (const e of list ?? []) listsOfEmployee.get(e.id)?.delete(key);
  };
  const drop = (key: string) => {
    if (key.startsWith('party_employees/')) forgetList(key);
    entries.delete(key);
  };
  const set = (key: string, value: Entry) => {
    if (maxEntries <= 0) return;
    drop(key);
    entries.set(key, value);
    if (Array.isArray(value))
      for (const e of value as readonly Employee[]) {
        let lists = listsOfEmployee.get(e.id);
        if (!lists) listsOfEmployee.set(e.id, (lists = new Set()));
        lists.add(key);
      }
    while (entries.size > maxEntries) drop(entries.keys().next().value!);
  };

  return {
    get generation() {
      return generation;
    },
    get size() {
      return entries.size;
    },
    has: (key: string) => entries.has(key),
    /** Reads and marks as recently used. */
    get(key: string): Entry | undefined {
      const value = entries.get(key);
      if (value !== undefined) {
        entries.delete(key);
        entries.set(key, value);
      }
      return value;
    },
    set,
    settings: () => settings,
    setSettings: (value: NonNullable<typeof settings>) => void (settings = value),
    invalidate(changes: readonly ChangeNote[]) {
      if (changes.length === 0) return;
      generation += 1;
      for (const { kind, id, partyId } of changes) {
        if (kind === 'dictionaries' || kind === 'config') settings = null;
        drop(keyOf(kind, id));
        if (kind === 'employees') {
          for (const list of [...(listsOfEmployee.get(id) ?? [])]) drop(list);
          listsOfEmployee.delete(id);
          if (partyId) drop(partyKey(partyId));
        }
      }
    },
    clear() {
      generation += 1;
      entries.clear();
      listsOfEmployee.clear();
      settings = null;
    },
  };
}
export type ReferenceCache = ReturnType<typeof createReferenceCache>;

const KEYED: KeyedKind[] = ['users', 'employees', 'legal_entities', 'divisions', 'persons', 'device_definitions', 'medical_programs', 'device_requests'];

/** Reads views through the cache: one lookup for whatever it misses (none when it holds everything). */
export function createReferenceReader(store: ReferenceStore, cache: ReferenceCache) {
  const stats = { hits: 0, misses: 0, lookups: 0 };

  /** What the cache holds of a view, and the request for what it misses (null: nothing). */
  function collect(request: ViewRequest): { data: LoadedReference; missing: LookupRequest | null } {
    const data = emptyLoaded();
    const missing: LookupRequest = {};
    let any = false;
    const miss = (kind: KeyedKind, id: string) => {
      ((missing[kind] ??= []) as string[]).push(id);
      any = true;
    };
    for (const kind of KEYED)
      for (const id of request[kind] ?? []) {
        const value = cache.get(keyOf(kind, id)) as ReferenceRecord | null | undefined;
        if (value === undefined) {
          miss(kind, id);
          continue;
        }
        data.records.set(keyOf(kind, id), value);
        if (value === null || (kind !== 'users' && kind !== 'employees')) continue;
        // A user needs its party and the party's employees; an employee its party.
        const partyId = (value as User).party_id;
        const party = cache.get(keyOf('parties', partyId)) as ReferenceRecord | null | undefined;
        const list = kind === 'users' ? (cache.get(partyKey(partyId)) as readonly Employee[] | undefined) : [];
        if (party === undefined || list === undefined) {
          data.records.delete(keyOf(kind, id));
          miss(kind, id);
          continue;
        }
        data.records.set(keyOf('parties', partyId), party);
        if (kind === 'users') data.employeesOfParty.set(partyId, list);
      }
    const settings = cache.settings();
    if (settings) Object.assign(data, settings);
    else {
      missing.settings = true;
      any = true;
    }
    return { data, missing: any ? missing : null };
  }

  /** The rows of a lookup as a view's data: every named key present (null when not found). */
  function loaded(request: LookupRequest, result: LookupResult, into: LoadedReference = emptyLoaded()): LoadedReference {
    for (const kind of KEYED) for (const id of request[kind] ?? []) if (!into.records.has(keyOf(kind, id))) into.records.set(keyOf(kind, id), null);
    for (const { kind, record } of result.records) {
      if (kind === 'dictionaries') (into.dictionaries as Map<string, Dictionary>).set(recordId(kind, record), record as Dictionary);
      else if (kind === 'config') (into.config as Map<string, ConfigEntry>).set(recordId(kind, record), record as ConfigEntry);
      else into.records.set(keyOf(kind, recordId(kind, record)), record);
    }
    for (const kind of ['users', 'employees'] as const)
      for (const id of request[kind] ?? []) {
        const found = into.records.get(keyOf(kind, id)) as User | null;
        if (!found) continue;
        // A party that is not there is "not found" too, and so is an empty list of its employees.
        if (!into.records.has(keyOf('parties', found.party_id))) into.records.set(keyOf('parties', found.party_id), null);
        if (kind === 'users') into.employeesOfParty.set(found.party_id, []);
      }
    for (const e of result.partyEmployees) (into.employeesOfParty.get(e.party_id) as Employee[] | undefined)?.push(e);
    return into;
  }

  function remember(request: LookupRequest, data: LoadedReference) {
    for (const [key, value] of data.records) cache.set(key, value);
    for (const [partyId, list] of data.employeesOfParty) cache.set(partyKey(partyId), list);
    if (request.settings) cache.setSettings({ dictionaries: new Map(data.dictionaries), config: new Map(data.config) });
  }

  return {
    stats: (): ReferenceCacheStats => ({ size: cache.size, generation: cache.generation, ...stats }),
    /** The records `request` names, of one generation. */
    async view(request: ViewRequest): Promise<ReferenceView> {
      const generation = cache.generation;
      const { data, missing } = collect(request);
      if (!missing) {
        stats.hits += 1;
        return createReferenceView(data);
      }
      stats.misses += 1;
      stats.lookups += 1;
      const found = loaded(missing, await store.lookup(missing));
      if (cache.generation !== generation) {
        // A change came in meanwhile: everything again, in one statement, and nothing of it cached.
        const whole = { ...request, settings: true };
        stats.lookups += 1;
        return createReferenceView(loaded(whole, await store.lookup(whole)));
      }
      remember(missing, found);
      for (const [key, value] of found.records) data.records.set(key, value);
      for (const [partyId, list] of found.employeesOfParty) data.employeesOfParty.set(partyId, list);
      if (missing.settings) Object.assign(data, { dictionaries: found.dictionaries, config: found.config });
      return createReferenceView(data);
    },
  };
}
export type ReferenceReader = ReturnType<typeof createReferenceReader>;

const emptyLoaded = (): LoadedReference => ({ records: new Map(), employeesOfParty: new Map(), dictionaries: new Map(), config: new Map() });

export type { ReferenceKind };
