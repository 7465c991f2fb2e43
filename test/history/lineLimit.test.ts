/** The longest line a history file may have: refused with its number, before it is read whole. */
import { describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LineTooLongError, lineBatches } from '../../src/history/lineBatches.js';
import { readHistoryFile } from '../../src/history/historyFile.js';
import { HistoryFileError } from '../../src/history/historyLine.js';
import { loadConfig } from '../../src/config.js';

async function* chunks(...parts: Array<string | Buffer>) {
  for (const part of parts) yield typeof part === 'string' ? Buffer.from(part) : part;
}
const collect = async (input: AsyncIterable<Buffer>, maxLineBytes: number) => {
  const lines: string[] = [];
  for await (const batch of lineBatches(input, { maxLineBytes })) lines.push(...batch);
  return lines;
};
const refusal = (input: AsyncIterable<Buffer>, maxLineBytes: number) =>
  collect(input, maxLineBytes).then(
    () => null,
    (error: unknown) => error,
  );

describe('lineBatches with maxLineBytes', () => {
  it('a line of exactly the bound passes (the line end not counted), one byte more is refused with its number', async () => {
    expect(await collect(chunks('abcd\r\nxy\nabcd'), 4)).toEqual(['abcd', 'xy', 'abcd']);
    expect(await refusal(chunks('abcd\nxy\nabcde\nz\n'), 4)).toEqual(new LineTooLongError(3, 4));
    expect(await refusal(chunks('abcd\nxy\nabcde'), 4)).toMatchObject({ lineNumber: 3, maxLineBytes: 4 }); // the last line, no line end
  });

  it('counts the lines of earlier chunks and of a line carried across chunks', async () => {
    expect(await refusal(chunks('a\nb\nc', 'cc\nd', 'ddddd', 'd\n'), 4)).toEqual(new LineTooLongError(4, 4));
    expect(await refusal(chunks('a\nbbb', 'bb\n'), 4)).toEqual(new LineTooLongError(2, 4));
    expect((await refusal(chunks('a\nb\nc'), 4)) as unknown).toBeNull();
  });

  it('stops reading as soon as the bound is passed: an endless line costs the bound, not the input', async () => {
    let pulled = 0;
    async function* endless() {
      yield Buffer.from('{"first": true}\n');
      for (;;) {
        pulled += 1;
        yield Buffer.alloc(64 * 1024, 0x78);
      }
    }
    const error = await refusal(endless(), 1024 * 1024);
    expect(error).toEqual(new LineTooLongError(2, 1024 * 1024));
    expect(pulled).toBe(17); // 16 chunks are exactly the bound; the 17th passes it
  });

  it('a history file: the line over IMPORT_MAX_LINE_BYTES is a HistoryFileError naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'esoz-line-limit-'));
    try {
      const file = join(dir, 'history.ndjson');
      await writeFile(file, `${'x'.repeat(10)}\n${'y'.repeat(5000)}\n`);
      const read = async () => {
        for await (const _ of readHistoryFile(file, { maxLineBytes: 4096 })) void _;
      };
      // In the file's order: line 1 (in the same chunk as the long line 2) is refused first, for what it is.
      await expect(read()).rejects.toEqual(new HistoryFileError(1, 'not a JSON object'));
      await writeFile(file, `${'y'.repeat(5000)}\n`);
      await expect(read()).rejects.toEqual(new HistoryFileError(1, 'longer than IMPORT_MAX_LINE_BYTES (4096 bytes)'));
      expect(new HistoryFileError(1, 'longer than IMPORT_MAX_LINE_BYTES (4096 bytes)').message).toBe('line 1: longer than IMPORT_MAX_LINE_BYTES (4096 bytes)');
      expect(new HistoryFileError(null, 'the event store is not empty').message).toBe('the event store is not empty');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('IMPORT_MAX_LINE_BYTES setting', () => {
  it('defaults to 8 MiB; whole bytes from 1024 to 64 MiB', () => {
    expect(loadConfig({}).IMPORT_MAX_LINE_BYTES).toBe(8 * 1024 * 1024);
    expect(loadConfig({ IMPORT_MAX_LINE_BYTES: '1024' }).IMPORT_MAX_LINE_BYTES).toBe(1024);
    expect(() => loadConfig({ IMPORT_MAX_LINE_BYTES: '8mb' })).toThrow('Invalid configuration: IMPORT_MAX_LINE_BYTES must be a number of bytes');
    expect(() => loadConfig({ IMPORT_MAX_LINE_BYTES: '1023' })).toThrow('IMPORT_MAX_LINE_BYTES must be at least 1024 bytes');
    expect(() => loadConfig({ IMPORT_MAX_LINE_BYTES: '1500.5' })).toThrow('IMPORT_MAX_LINE_BYTES must be a whole number of bytes');
    expect(() => loadConfig({ IMPORT_MAX_LINE_BYTES: String(64 * 1024 * 1024 + 1) })).toThrow('IMPORT_MAX_LINE_BYTES must be at most 67108864 bytes');
  });
});
