/**
 * `cli reference import <FILE> [--replace KIND]`: a bulk load of reference data (NDJSON, one
 * `{"kind", "record"}` a line), streamed and all-or-nothing, beside a serving server on PostgreSQL (its
 * instances see the change within their REFERENCE_POLL_MS, at once on the NOTIFY). On PGlite, whose
 * data directory the serving process owns, send the file to the server's batch API instead.
 */
import { createReadStream } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Database } from '../database/database.js';
import { createPostgresReferenceStore } from '../referenceData/postgresReferenceStore.js';
import { referenceKindSchema } from '../referenceData/records.js';
import { readImportLines } from '../referenceData/referenceImport.js';
import { importOutcomeData } from '../referenceData/referenceService.js';
import { ReferenceImportError } from '../referenceData/referenceStore.js';
import { createProgress } from './progress.js';

export const REFERENCE_HELP = `usage: npm run cli -- reference import <FILE> [--replace KIND]
Loads reference data (NDJSON, one {"kind": "<kind>", "record": {…}} a line) in one transaction: every
line is checked first; a bad line, or a line with the stored version and other content, refuses the
whole file (exit 1, nothing written). Older versions than the stored ones are skipped and counted.
  --replace KIND  the file holds the whole of KIND: records of KIND it does not hold are removed
Kinds: ${referenceKindSchema.options.join(', ')}`;

export class ReferenceUsageError extends Error {}

export async function referenceCommand(
  args: string[],
  withDatabase: <T>(work: (database: Database) => Promise<T>) => Promise<T>,
  { maxLineBytes }: { maxLineBytes: number },
) {
  const [sub, ...rest] = args;
  if (sub !== 'import') throw new ReferenceUsageError(sub ? `unknown reference command ${sub}` : 'reference import <FILE> [--replace KIND]');
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { replace: { type: 'string' } } });
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new ReferenceUsageError('name one reference-data file (NDJSON)');
  const replace = values.replace === undefined ? undefined : referenceKindSchema.safeParse(values.replace);
  if (replace && !replace.success) throw new ReferenceUsageError(`--replace: unknown kind ${values.replace}`);
  return withDatabase(async (database) => {
    const store = await createPostgresReferenceStore(database);
    // One quick pass counts the lines (about 2M a second here), so the progress bar has an ETA.
    const progress = createProgress('reference import', { total: await countLines(file) });
    try {
      const outcome = await store.importLines(() => readImportLines(createReadStream(file, { highWaterMark: 1 << 20 }), { maxLineBytes }), {
        actor: 'cli',
        ...(replace?.success ? { replace: replace.data } : {}),
        onProgress: progress.add,
      });
      progress.done();
      process.stdout.write(`${JSON.stringify(importOutcomeData(outcome))}\n`);
      return 0;
    } catch (error) {
      if (!(error instanceof ReferenceImportError)) throw error;
      process.stderr.write(`reference import refused, nothing was written: ${error.message}\n`);
      return 1;
    }
  });
}

async function countLines(file: string): Promise<number> {
  let lines = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>)
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines += 1;
  return lines;
}
