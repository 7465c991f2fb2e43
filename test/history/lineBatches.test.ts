/**
 * Lines of a byte stream (lineBatches), against readline as the oracle: any text, any line ends (\n,
 * \r\n, a lone \r), cut into chunks anywhere — inside a multi-byte character and between \r and \n.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { lineBatches } from '../../src/history/lineBatches.js';

async function collect(chunks: Buffer[]): Promise<string[]> {
  const lines: string[] = [];
  for await (const batch of lineBatches(Readable.from(chunks))) lines.push(...batch);
  return lines;
}

async function oracle(bytes: Buffer): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of createInterface({ input: Readable.from([bytes]), crlfDelay: Infinity })) lines.push(line);
  return lines;
}

const cut = (bytes: Buffer, at: number[]) => {
  const points = [...new Set(at.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  return [0, ...points].map((from, i) => bytes.subarray(from, points[i] ?? bytes.length)).filter((c) => c.length > 0);
};

describe('lines of a byte stream', () => {
  it("gives readline's lines for any text, line ends and chunking", async () => {
    const text = fc.string({ unit: fc.constantFrom('a', '{', '"', 'ш', 'є', '😀', ' ', '\\', '\t'), maxLength: 12 });
    const end = fc.constantFrom('\n', '\r\n', '\r');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(text, end), { maxLength: 12 }), fc.boolean(), fc.array(fc.nat(), { maxLength: 8 }), async (lines, lastEnded, at) => {
        const joined = lines.map(([t, e], i) => (i < lines.length - 1 || lastEnded ? t + e : t)).join('');
        const bytes = Buffer.from(joined, 'utf8');
        expect(await collect(cut(bytes, at))).toEqual(await oracle(bytes));
      }),
      { seed: 2612, numRuns: 400 },
    );
  });

  it('keeps a \r\n split between two chunks one line end, and a character split between chunks whole', async () => {
    expect(await collect([Buffer.from('{"a":"ш"}\r'), Buffer.from('\n{"b":1}\r')])).toEqual(['{"a":"ш"}', '{"b":1}']);
    const bytes = Buffer.from('шт\nx', 'utf8');
    expect(await collect([bytes.subarray(0, 1), bytes.subarray(1)])).toEqual(['шт', 'x']);
  });
});
