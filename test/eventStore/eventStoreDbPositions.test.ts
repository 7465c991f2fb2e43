import { describe, expect, it } from '@jest/globals';
import { compareEncodedPositions, compareEsdbPositions, decodeEsdbPosition, encodeEsdbPosition } from '../../src/eventStore/eventStoreDbEventStore.js';

describe('EventStoreDB positions', () => {
  it('encodes commit and prepare as decimal "<commit>:<prepare>"', () => {
    expect(encodeEsdbPosition({ commit: 1234n, prepare: 1200n })).toBe('1234:1200');
    expect(encodeEsdbPosition({ commit: 0n, prepare: 0n })).toBe('0:0');
  });

  it('round-trips values beyond Number.MAX_SAFE_INTEGER', () => {
    const position = { commit: 18446744073709551615n, prepare: 9007199254740993n };
    expect(decodeEsdbPosition(encodeEsdbPosition(position))).toEqual(position);
  });

  it('rejects strings that are not positions', () => {
    for (const bad of ['', '12', '1:2:3', '-1:2', 'a:b', '1:', ' 1:2']) expect(() => decodeEsdbPosition(bad)).toThrow(/Not an EventStoreDB position/);
  });

  it('orders by commit first, then prepare (events of one append share a commit)', () => {
    expect(compareEsdbPositions({ commit: 1n, prepare: 9n }, { commit: 2n, prepare: 0n })).toBe(-1);
    expect(compareEsdbPositions({ commit: 5n, prepare: 3n }, { commit: 5n, prepare: 4n })).toBe(-1);
    expect(compareEsdbPositions({ commit: 5n, prepare: 4n }, { commit: 5n, prepare: 3n })).toBe(1);
    expect(compareEsdbPositions({ commit: 5n, prepare: 4n }, { commit: 5n, prepare: 4n })).toBe(0);
  });

  it('compares encoded positions numerically, not as strings', () => {
    expect(compareEncodedPositions('9:9', '10:0')).toBe(-1);
    expect(compareEncodedPositions('100:20', '100:3')).toBe(1);
    expect(compareEncodedPositions('7:7', '7:7')).toBe(0);
    const sorted = ['10:1', '2:5', '10:0', '2:10'].sort(compareEncodedPositions);
    expect(sorted).toEqual(['2:5', '2:10', '10:0', '10:1']);
  });
});

describe('EventStoreDB unknown positions (servers before 22.6, stream reads)', () => {
  it('2^64−1 in commit or prepare, or no position at all, is unknown; real positions are not', async () => {
    const { isUnknownEsdbPosition } = await import('../../src/eventStore/eventStoreDbEventStore.js');
    expect(isUnknownEsdbPosition(undefined)).toBe(true);
    expect(isUnknownEsdbPosition({ commit: 18446744073709551615n, prepare: 18446744073709551615n })).toBe(true);
    expect(isUnknownEsdbPosition({ commit: 18446744073709551615n, prepare: 10n })).toBe(true);
    expect(isUnknownEsdbPosition({ commit: 0n, prepare: 0n })).toBe(false);
    expect(isUnknownEsdbPosition({ commit: 18446744073709551614n, prepare: 18446744073709551614n })).toBe(false);
  });
});
