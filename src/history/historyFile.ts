/** Reads an exported history file line by line, checking each (numbered errors, nothing kept in memory). */
import { createReadStream } from 'node:fs';
import { LineTooLongError, lineBatches } from './lineBatches.js';
import { HistoryFileError, historyLineSchema } from './historyLine.js';
import type { NumberedLine } from './postgresHistory.js';

/** `maxLineBytes` (IMPORT_MAX_LINE_BYTES): a longer line is refused with its number before it is read whole. */
export async function* readHistoryFile(path: string, { maxLineBytes }: { maxLineBytes?: number } = {}): AsyncGenerator<NumberedLine> {
  const input = createReadStream(path, { highWaterMark: 1 << 20 });
  let number = 0;
  try {
    for await (const batch of tooLongRefused(lineBatches(input, maxLineBytes === undefined ? {} : { maxLineBytes })))
      for (const text of batch) {
        number += 1;
        if (text.trim() === '') throw new HistoryFileError(number, 'empty line');
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          throw new HistoryFileError(number, 'not a JSON object');
        }
        const parsed = historyLineSchema.safeParse(value);
        if (!parsed.success) {
          const issue = parsed.error.issues[0]!;
          throw new HistoryFileError(number, `${issue.path.join('.') || 'line'}: ${issue.message}`);
        }
        yield { number, line: parsed.data };
      }
  } finally {
    input.destroy();
  }
}

/** A line over the bound is the file's fault: refused like any bad line, with its number. */
async function* tooLongRefused(batches: AsyncGenerator<string[]>): AsyncGenerator<string[]> {
  try {
    yield* batches;
  } catch (error) {
    if (error instanceof LineTooLongError) throw new HistoryFileError(error.lineNumber, `longer than IMPORT_MAX_LINE_BYTES (${error.maxLineBytes} bytes)`);
    throw error;
  }
}
