/** Reads an exported history file line by line, checking each (numbered errors, nothing kept in memory). */
import { createReadStream } from 'node:fs';
import { lineBatches } from './lineBatches.js';
import { HistoryFileError, historyLineSchema } from './historyLine.js';
import type { NumberedLine } from './postgresHistory.js';

export async function* readHistoryFile(path: string): AsyncGenerator<NumberedLine> {
  const input = createReadStream(path, { highWaterMark: 1 << 20 });
  let number = 0;
  try {
    for await (const batch of lineBatches(input))
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
