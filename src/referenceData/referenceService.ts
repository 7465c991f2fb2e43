/**
 * Reference data as the rest of the registry uses it: views for the commands (through the cache),
 * and the changes the upstream integration makes (one record, a batch, a bulk load), each answered
 * only once this process's cache shows it (other instances follow within their poll interval, or at
 * once on the NOTIFY).
 */
import { conflict, type EsozError, notFound, unprocessable } from '../domain/shared/esozError.js';
import { idField, recordId, referenceKindSchema, type ReferenceKind } from './records.js';
import type { ReferenceReader } from './referenceCache.js';
import type { ReferenceFollower } from './referenceChanges.js';
import { checkRecord, readImportLines } from './referenceImport.js';
import { ReferenceImportError, type ImportOptions, type ImportSource, type ImportOutcome, type ReferenceStore, type StoredRecord } from './referenceStore.js';

export type ReferenceService = ReturnType<typeof createReferenceService>;

/** The kind named in a path: 404 for one that does not exist. */
export function kindOf(name: string): ReferenceKind {
  const parsed = referenceKindSchema.safeParse(name);
  if (!parsed.success) throw notFound('Reference kind not found');
  return parsed.data;
}

/** A refused line of a batch as the ЕСОЗ 422: the message names the line, the entry the field (lines as a JSON array). */
export function batchError(error: ReferenceImportError): EsozError {
  const field = error.field === '(line)' ? '' : `.${error.field}`;
  return unprocessable(error.message, `$[${error.line - 1}]${field}`);
}

export function createReferenceService({
  store,
  reader,
  follower,
  batchMaxLines,
}: {
  store: ReferenceStore;
  reader: ReferenceReader;
  follower: ReferenceFollower;
  batchMaxLines: number;
}) {
  return {
    view: reader.view,
    stats: reader.stats,
    store,

    /** PUT of one record: 201 created, 200 updated or unchanged; 409 for an older version or the same one changed. */
    async put(kind: ReferenceKind, id: string, body: unknown, actor: string): Promise<{ status: 200 | 201; stored: StoredRecord; changed: boolean }> {
      let record;
      try {
        record = checkRecord(kind, body, 0);
      } catch (error) {
        if (!(error instanceof ReferenceImportError)) throw error;
        throw unprocessable(error.message, `$.${error.field.replace(/^record\.?/, '') || idField(kind)}`);
      }
      if (recordId(kind, record) !== id) throw unprocessable(`must equal the ${idField(kind)} in the path`, `$.${idField(kind)}`);
      const result = await store.put(kind, record, actor);
      if (result.outcome === 'older') throw conflict(`Version ${record.version} is older than the stored version ${result.stored.version}`);
      if (result.outcome === 'conflict') throw conflict(`Version ${record.version} is stored with different content`);
      if (result.outcome !== 'unchanged') await follower.catchUp();
      return { status: result.outcome === 'created' ? 201 : 200, stored: result.stored, changed: result.outcome !== 'unchanged' };
    },

    /** A batch (all or nothing): lines of `kind` as bare records, or of any kind as `{"kind", "record"}`. */
    async importBatch(input: () => AsyncIterable<Buffer | string>, kind: ReferenceKind | undefined, actor: string): Promise<ImportOutcome> {
      try {
        const lines = () => readImportLines(input(), { ...(kind ? { kind } : {}), maxLines: batchMaxLines });
        return await this.importLines(lines, { actor });
      } catch (error) {
        if (error instanceof ReferenceImportError) throw batchError(error);
        throw error;
      }
    },

    async importLines(source: ImportSource, options: ImportOptions): Promise<ImportOutcome> {
      const outcome = await store.importLines(source, options);
      if (outcome.written + outcome.removed > 0) await follower.catchUp();
      return outcome;
    },

    async get(kind: ReferenceKind, id: string): Promise<StoredRecord> {
      const found = await store.get(kind, id);
      if (!found) throw notFound('Reference record not found');
      return found;
    },

    async asOf(kind: ReferenceKind, id: string, at: Date): Promise<StoredRecord> {
      const found = await store.asOf(kind, id, at);
      if (!found) throw notFound('Reference record did not exist at that time');
      return found;
    },
  };
}

/** A stored record as the API shows it. */
export const storedRecordData = (stored: StoredRecord) => ({
  kind: stored.kind,
  id: stored.id,
  version: stored.version,
  changed_at: stored.changedAt,
  record: stored.record,
});

/** A bulk load's answer as the API and the CLI show it. */
export const importOutcomeData = (outcome: ImportOutcome) => ({
  lines: outcome.lines,
  written: outcome.written,
  skipped_older: outcome.skippedOlder,
  unchanged: outcome.unchanged,
  removed: outcome.removed,
  removed_ids: outcome.removedIds,
});
