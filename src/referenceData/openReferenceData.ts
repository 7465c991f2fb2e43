/**
 * Reference data at start: the store, this process's cache and its follower of the change log, and
 * the start-up load of a reference-data file in the earlier format (REFERENCE_DATA_FILE, a test's
 * fixture, or the demo data on a store that holds none), through the same all-or-nothing load as
 * `cli reference import`.
 */
import type { Config } from '../config.js';
import type { Database } from '../database/database.js';
import type { Logger } from '../logger.js';
import demoReferenceData from './demoReferenceData.json' with { type: 'json' };
import { createPostgresReferenceStore } from './postgresReferenceStore.js';
import { createReferenceCache, createReferenceReader } from './referenceCache.js';
import { followReferenceChanges } from './referenceChanges.js';
import {
  legacyImportLines,
  loadReferenceDataFile,
  parseReferenceData,
  ReferenceDataError,
  type ParsedReferenceDataFile,
  type ReferenceDataFile,
} from './referenceData.js';
import { createReferenceService, type ReferenceService } from './referenceService.js';
import { ReferenceImportError, type ReferenceStore } from './referenceStore.js';

export type OpenedReferenceData = {
  service: ReferenceService;
  store: ReferenceStore;
  /** The file loaded at this start (null: none was), for the licences it carries and the demo identity. */
  file: ParsedReferenceDataFile | null;
  /** Whether that file was the demo data (the development warning says so). */
  demo: boolean;
  close(): Promise<void>;
};

/** The demo data, parsed (the development identity and the embedded default's first start). */
export const demoReferenceFile = (): ParsedReferenceDataFile => parseReferenceData(demoReferenceData, 'demo reference data');

async function startUpFile(config: Config, store: ReferenceStore, given: ReferenceDataFile | undefined) {
  if (given) return { file: parseReferenceData(given, 'reference data given at start'), source: 'reference data given at start' };
  if (config.REFERENCE_DATA_FILE) return { file: await loadReferenceDataFile(config.REFERENCE_DATA_FILE), source: config.REFERENCE_DATA_FILE };
  // A store fed by `cli reference import` or the API needs no file; an empty one gets the demo data
  // in development only (production refuses to start on it instead, server.ts).
  if (config.PRODUCTION || (await store.holds('legal_entities'))) return null;
  return { file: demoReferenceFile(), source: 'demo reference data' };
}

export async function openReferenceData({
  config,
  database,
  logger,
  file: given,
}: {
  config: Config;
  database: Database;
  logger: Logger;
  file?: ReferenceDataFile;
}): Promise<OpenedReferenceData> {
  const store = await createPostgresReferenceStore(database);
  const start = await startUpFile(config, store, given);
  if (start) {
    const lines = legacyImportLines(start.file, start.source);
    try {
      const outcome = await store.importLines(
        async function* () {
          yield* lines;
        },
        { actor: `start-up: ${start.source}` },
      );
      if (outcome.written > 0) logger.info({ source: start.source, written: outcome.written, skipped_older: outcome.skippedOlder }, 'reference data loaded');
    } catch (error) {
      if (error instanceof ReferenceImportError) {
        const line = lines[error.line - 1];
        throw new ReferenceDataError(
          `Reference data in ${start.source} refused: ${line ? `${line.kind} ${line.id}: ` : ''}${error.message.replace(/^line \d+: /, '')}`,
        );
      }
      throw error;
    }
  }
  const cache = createReferenceCache(config.REFERENCE_CACHE_SIZE);
  const reader = createReferenceReader(store, cache);
  const follower = await followReferenceChanges({ store, database, cache, pollMs: config.REFERENCE_POLL_MS, logger });
  const service = createReferenceService({ store, reader, follower, batchMaxLines: config.REFERENCE_BATCH_MAX_LINES });
  return { service, store, file: start?.file ?? null, demo: start?.source === 'demo reference data', close: () => follower.close() };
}
