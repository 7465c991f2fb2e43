/**
 * The verifier's packed change log and the database's short lines: what the packing and the
 * by-position reading must not change — every event id found and named as it was written, every stream
 * name and type read as JSON.parse reads them.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { ChangeLog } from '../../src/history/changeLog.js';
import { PackedHeads } from '../../src/history/streamHeads.js';
import { verifyHistoryLines } from '../../src/history/verifyHistory.js';
import { GENESIS_HASH } from '../../src/eventStore/hashChain.js';

const hashOf = (n: number) => n.toString(16).padStart(64, '0');

function logOf(ids: string[]) {
  const heads = new PackedHeads();
  const log = new ChangeLog();
  ids.forEach((id, i) => {
    heads.set(i, 0, hashOf(i + 1));
    log.push(i + 1, id, i, 0, heads);
  });
  return log;
}

describe('ChangeLog', () => {
  const canonical = '01a234f4-3f55-746b-bc45-0b09a4190391';
  const nil = '00000000-0000-0000-0000-000000000000';
  const others = ['01A234F4-3F55-746B-BC45-0B09A4190391', 'not-a-uuid', '', '01a234f4-3f55-746b-bc45-0b09a419039g', 'ё'.repeat(36)];

  it('given canonical and other event ids, finds each at its position and names it as written', () => {
    const ids = [canonical, ...others, nil];
    const log = logOf(ids);
    ids.forEach((id, at) => {
      expect(log.find(id)).toBe(at);
      expect(log.eventId(at)).toBe(id);
    });
    expect(log.find('01a234f4-3f55-746b-bc45-0b09a4190392')).toBe(-1);
  });

  it('given an other id in a slot, does not take that slot for the nil UUID', () => {
    const log = logOf(['not-a-uuid']);
    expect(log.find(nil)).toBe(-1);
  });

  it('given a repeated id, finds its first change', () => {
    expect(logOf([canonical, canonical]).find(canonical)).toBe(0);
    expect(logOf(['x', 'x']).find('x')).toBe(0);
  });

  it('when the changes through a line are dropped, keeps the rest with their ids, revisions and hashes', () => {
    const ids = [canonical, 'other-1', nil, 'other-2'];
    const log = logOf(ids);
    log.dropThrough(2);
    expect(log.length).toBe(2);
    expect([log.eventId(0), log.eventId(1)]).toEqual([nil, 'other-2']);
    expect([log.find(nil), log.find('other-2'), log.find('other-1'), log.find(canonical)]).toEqual([0, 1, -1, -1]);
    const target = new PackedHeads();
    log.apply(1, target);
    expect(target.hash(3)).toBe(hashOf(4));
    expect(log.line(1)).toBe(4);
  });

  it('grows past its first allocation', () => {
    const ids = Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? `id-${i}` : `${i.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`));
    const log = logOf(ids);
    for (const at of [0, 1, 1023, 1024, 2047, 2999]) expect(log.find(ids[at]!)).toBe(at);
  });
});

async function* batches(list: string[][]) {
  yield* list;
}

/** The database's short line (postgresHistory.ts, SHORT_LINE_SQL), strings as JSON (to_json escapes as JSON does). */
const shortLine = (prev: string, hash: string, id: string, revision: number, type: string, stream: string) =>
  `["${prev}","${hash}","${id}",${revision},${JSON.stringify(type)},${JSON.stringify(stream)}]`;

describe('short lines read by position', () => {
  it('reads any stream name and type as JSON.parse does (quotes, backslashes, controls, any Unicode)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }), async (stream, type) => {
        const lines = [0, 1, 2].map((revision) =>
          shortLine(
            revision === 0 ? GENESIS_HASH : hashOf(revision),
            hashOf(revision + 1),
            `0000000${revision}-0000-4000-8000-000000000000`,
            revision,
            type,
            stream,
          ),
        );
        const result = await verifyHistoryLines(batches([lines]), { hashesCheckedBySource: true });
        expect(result.problem).toBeNull();
        expect(result.heads.name(0)).toBe(stream);
        expect(result.heads.revision(0)).toBe(2);
        expect(result.streams).toBe(1);
      }),
      { numRuns: 300, seed: 1612 },
    );
  });

  it('given a revision too large to be exact, names the line', async () => {
    const line = shortLine(GENESIS_HASH, hashOf(1), '00000000-0000-4000-8000-000000000000', 0, 't', 's').replace(',0,', ',12345678901234567890,');
    const result = await verifyHistoryLines(batches([[line]]), { hashesCheckedBySource: true });
    expect(result.problem).toMatchObject({ line: 1, message: 'not a checked history line' });
  });

  it('given a line cut short, names it', async () => {
    const line = shortLine(GENESIS_HASH, hashOf(1), '00000000-0000-4000-8000-000000000000', 0, 't', 's');
    const result = await verifyHistoryLines(batches([[line.slice(0, -1)]]), { hashesCheckedBySource: true });
    expect(result.problem).toMatchObject({ line: 1, message: 'not a JSON array' });
  });
});
