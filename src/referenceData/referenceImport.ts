/**
 * The lines of a reference-data load (`cli reference import`, the batch API), checked one by one as
 * they stream in: `{"kind": "<kind>", "record": {…}}` per line (the batch API of one kind takes bare
 * records). A bad line stops the load with its number; nothing of it is written (the store's load is
 * one transaction).
 */
import { findJsonProblem } from '../domain/shared/jsonText.js';
import { lineBatches, LineTooLongError } from '../history/lineBatches.js';
import { canonicalRecordText, recordId, recordProblem, REFERENCE_SCHEMAS, referenceKindSchema, type ReferenceKind, type ReferenceRecord } from './records.js';
import { digestOf } from './postgresReferenceStore.js';
import { ReferenceImportError, type ImportLine } from './referenceStore.js';

// Ids travel as COPY fields between two control characters and are never shown raw: no control characters.
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A record of `kind`, validated; throws ReferenceImportError(line, field, message). */
export function checkRecord(kind: ReferenceKind, value: unknown, line: number): ReferenceRecord {
  const parsed = REFERENCE_SCHEMAS[kind].safeParse(value);
  if (!parsed.success) {
    const { field, message } = recordProblem(parsed.error);
    throw new ReferenceImportError(line, `record.${field}`, message);
  }
  const record = parsed.data as ReferenceRecord;
  const id = recordId(kind, record);
  if (CONTROL.test(id))
    throw new ReferenceImportError(line, `record.${kind === 'dictionaries' || kind === 'config' ? 'name' : 'id'}`, 'must not hold control characters');
  // NUL and unpaired surrogates come out of JSON.stringify as \u escapes: text without one is clean.
  const problem = canonicalRecordText(kind, record).includes('\\u') ? findJsonProblem(record, 'json_data_property') : null;
  if (problem)
    throw new ReferenceImportError(
      line,
      problem.kind === 'text' ? `record${problem.entry.entry!.slice(1)}` : 'record',
      problem.kind === 'text' ? 'must not contain NUL characters or unpaired UTF-16 surrogates' : 'nested too deep',
    );
  return record;
}

/** A checked record as a load's line: its canonical text (hashed, and stored) and digest. */
export function importLineOf(kind: ReferenceKind, record: ReferenceRecord, line: number): ImportLine {
  const json = canonicalRecordText(kind, record);
  return { line, kind, id: recordId(kind, record), version: record.version, digest: digestOf(json), json };
}

function parseLine(text: string, line: number, kindOfBatch: ReferenceKind | undefined): ImportLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ReferenceImportError(line, '(line)', 'not valid JSON');
  }
  if (kindOfBatch) return importLineOf(kindOfBatch, checkRecord(kindOfBatch, value, line), line);
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ReferenceImportError(line, '(line)', 'not a JSON object');
  const { kind, record, ...rest } = value as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0) throw new ReferenceImportError(line, extra[0]!, 'unknown key (a line is {"kind", "record"})');
  const parsedKind = referenceKindSchema.safeParse(kind);
  if (!parsedKind.success) throw new ReferenceImportError(line, 'kind', `must be one of ${referenceKindSchema.options.join(', ')}`);
  return importLineOf(parsedKind.data, checkRecord(parsedKind.data, record, line), line);
}

export type ImportSource = { lines: AsyncIterable<ImportLine>; counted: () => number };

/**
 * The checked lines of `input` (blank lines skipped, numbered as in the file). `maxLines` bounds a
 * batch; `maxLineBytes` any line.
 */
export async function* readImportLines(
  input: AsyncIterable<Buffer | string>,
  { kind, maxLines, maxLineBytes = 1 << 20 }: { kind?: ReferenceKind; maxLines?: number; maxLineBytes?: number } = {},
): AsyncGenerator<ImportLine> {
  let number = 0;
  let records = 0;
  try {
    // A line past the bound is refused as its bytes come in: memory never grows with a line's length.
    for await (const batch of lineBatches(input, { maxLineBytes })) {
      for (const text of batch) {
        number += 1;
        if (text.trim() === '') continue;
        records += 1;
        if (maxLines !== undefined && records > maxLines) throw new ReferenceImportError(number, '(line)', `a batch holds at most ${maxLines} lines`);
        yield parseLine(text, number, kind);
      }
    }
  } catch (error) {
    if (error instanceof LineTooLongError) throw new ReferenceImportError(error.lineNumber, '(line)', `longer than ${error.maxLineBytes} bytes`);
    throw error;
  }
}
