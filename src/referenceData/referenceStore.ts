/**
 * The reference-data port: where the copy of other registries' records lives (a PostgreSQL server or
 * PGlite; see postgresReferenceStore.ts). No SQL crosses it. Every change is recorded in an
 * append-only change log, read by the caches of every instance (referenceCache.ts) and by auditors.
 */
import type { Employee, ReferenceKind, ReferenceRecord } from './records.js';
import type { ViewRequest } from './referenceView.js';

/** A lookup: the view request's misses, and whether the dictionaries and config are wanted too. */
export type LookupRequest = ViewRequest & { settings?: boolean };

/** What a lookup found; a named record missing from `records` does not exist. */
export type LookupResult = {
  records: Array<{ kind: ReferenceKind; record: ReferenceRecord }>;
  /** Every employee of the party of each user looked up (the employment check reads them). */
  partyEmployees: Employee[];
};

/** A stored record, its version and when it changed here. */
export type StoredRecord = { kind: ReferenceKind; id: string; version: number; changedAt: string; record: ReferenceRecord };

/** Who changed reference data: a token's user, or the CLI. */
export type ReferenceActor = string;

export type PutOutcome =
  | { outcome: 'created' | 'updated' | 'unchanged'; stored: StoredRecord }
  | { outcome: 'older'; stored: StoredRecord }
  | { outcome: 'conflict'; stored: StoredRecord };

/**
 * The lines of a bulk load, each call reading them from the start: a load into empty tables COPYs
 * straight into them and, should the file repeat an id, is read again through the staged merge.
 */
export type ImportSource = () => AsyncIterable<ImportLine>;

/** A validated line of a bulk load (referenceImport.ts checked it). */
export type ImportLine = { line: number; kind: ReferenceKind; id: string; version: number; digest: string; json: string };

export type ImportOptions = { actor: ReferenceActor; replace?: ReferenceKind; onProgress?: (lines: number) => void };

export type ImportOutcome = {
  lines: number;
  /** Records written (new or of a newer version). */
  written: number;
  /** The stored version was newer than the line's. */
  skippedOlder: number;
  /** The stored record was the line's already. */
  unchanged: number;
  /** `--replace`: records of the kind the file did not hold, removed. */
  removed: number;
  removedIds: string[];
};

/** A refused bulk load: nothing of it was written. */
export class ReferenceImportError extends Error {
  constructor(
    readonly line: number,
    readonly field: string,
    message: string,
  ) {
    super(line > 0 ? `line ${line}: ${field === '(line)' ? '' : `${field}: `}${message}` : message);
  }
}

/** One entry of the change log, as the caches read it. */
export type ChangeNote = { seq: bigint; kind: ReferenceKind; id: string; partyId: string | null };

export interface ReferenceStore {
  /** Every record the request names, in one round trip. */
  lookup(request: LookupRequest): Promise<LookupResult>;
  /** One record (null: never stored, or removed). */
  get(kind: ReferenceKind, id: string): Promise<StoredRecord | null>;
  /** The record as it stood at `at` (from the change log). */
  asOf(kind: ReferenceKind, id: string, at: Date): Promise<StoredRecord | null>;
  /** Upserts one record by the version rules (an older version or the same one changed is refused). */
  put(kind: ReferenceKind, record: ReferenceRecord, actor: ReferenceActor): Promise<PutOutcome>;
  /** All-or-nothing bulk load (streamed). Throws ReferenceImportError naming the line. */
  importLines(source: ImportSource, options: ImportOptions): Promise<ImportOutcome>;
  /** The change log's last sequence number (0: empty). */
  head(): Promise<bigint>;
  /** Changes after `seq`, oldest first, at most `limit`. */
  changesSince(seq: bigint, limit: number): Promise<ChangeNote[]>;
  /** Whether any record of `kind` is stored. */
  holds(kind: ReferenceKind): Promise<boolean>;
}
