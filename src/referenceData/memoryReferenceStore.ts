/**
 * Reference data in memory, behind the same port: for benchmarks and specifications that decide on a
 * fixed set of records without a database. Same version rules as the PostgreSQL store; no change log
 * beyond what the caches need.
 */
import { legacyImportLines, type ParsedReferenceDataFile } from './referenceData.js';
import { recordId, type Employee, type ReferenceKind, type ReferenceRecord } from './records.js';
import { recordDigest } from './postgresReferenceStore.js';
import { ReferenceImportError, type ChangeNote, type ImportOutcome, type LookupResult, type ReferenceStore, type StoredRecord } from './referenceStore.js';
import { createReferenceCache, createReferenceReader, type ReferenceReader } from './referenceCache.js';
import { keyOf } from './referenceView.js';

export function createMemoryReferenceStore(file?: ParsedReferenceDataFile): ReferenceStore {
  const records = new Map<string, StoredRecord & { digest: string }>();
  const changes: ChangeNote[] = [];
  const write = (kind: ReferenceKind, id: string, record: ReferenceRecord) => {
    const stored = { kind, id, version: record.version, changedAt: new Date().toISOString(), record, digest: recordDigest(record) };
    records.set(keyOf(kind, id), stored);
    changes.push({ seq: BigInt(changes.length + 1), kind, id, partyId: (record as { party_id?: string }).party_id ?? null });
    return stored;
  };
  for (const line of file ? legacyImportLines(file, 'memory') : []) write(line.kind, line.id, JSON.parse(line.json) as ReferenceRecord);
  const all = (kind: ReferenceKind) => [...records.values()].filter((r) => r.kind === kind).map((r) => r.record);
  const one = (kind: ReferenceKind, id: string) => records.get(keyOf(kind, id))?.record;

  return {
    async lookup(request) {
      const result: LookupResult = { records: [], partyEmployees: [] };
      const add = (kind: ReferenceKind, id: string) => {
        const record = one(kind, id);
        if (record) result.records.push({ kind, record });
        return record as { party_id?: string } | undefined;
      };
      for (const id of request.users ?? []) {
        const partyId = add('users', id)?.party_id;
        if (partyId === undefined) continue;
        add('parties', partyId);
        result.partyEmployees.push(...(all('employees') as Employee[]).filter((e) => e.party_id === partyId));
      }
      for (const id of request.employees ?? []) {
        const partyId = add('employees', id)?.party_id;
        if (partyId !== undefined) add('parties', partyId);
      }
      for (const kind of ['legal_entities', 'divisions', 'persons', 'device_definitions', 'medical_programs', 'device_requests'] as const)
        for (const id of request[kind] ?? []) add(kind, id);
      if (request.settings) for (const kind of ['dictionaries', 'config'] as const) for (const record of all(kind)) result.records.push({ kind, record });
      return result;
    },
    get: async (kind, id) => records.get(keyOf(kind, id)) ?? null,
    asOf: async (kind, id) => records.get(keyOf(kind, id)) ?? null,
    async put(kind, record) {
      const id = recordId(kind, record);
      const before = records.get(keyOf(kind, id));
      if (before && record.version < before.version) return { outcome: 'older', stored: before };
      if (before && record.version === before.version) return { outcome: before.digest === recordDigest(record) ? 'unchanged' : 'conflict', stored: before };
      return { outcome: before ? 'updated' : 'created', stored: write(kind, id, record) };
    },
    async importLines(source) {
      const outcome: ImportOutcome = { lines: 0, written: 0, skippedOlder: 0, unchanged: 0, removed: 0, removedIds: [] };
      for await (const line of source()) {
        outcome.lines += 1;
        const put = await this.put(line.kind, JSON.parse(line.json) as ReferenceRecord, 'memory');
        if (put.outcome === 'older') outcome.skippedOlder += 1;
        else if (put.outcome === 'conflict')
          throw new ReferenceImportError(line.line, 'version', `${line.id}: version ${line.version} is stored with different content`);
        else if (put.outcome === 'unchanged') outcome.unchanged += 1;
        else outcome.written += 1;
      }
      return outcome;
    },
    head: async () => BigInt(changes.length),
    changesSince: async (seq, limit) => changes.slice(Number(seq), Number(seq) + limit),
    holds: async (kind) => all(kind).length > 0,
  };
}

/** Views over a fixed file, cached as the server's are (benchmarks, specifications). */
export const memoryReferenceViews = (file: ParsedReferenceDataFile, cacheSize = 10_000): ReferenceReader =>
  createReferenceReader(createMemoryReferenceStore(file), createReferenceCache(cacheSize));
