/** An EventStoreDB position's parts are unsigned 64-bit integers: beyond that it is no position (422 "Invalid checkpoint"). */
import { describe, expect, it } from '@jest/globals';
import { decodeEsdbPosition } from '../../src/eventStore/eventStoreDbEventStore.js';

const MAX = 2n ** 64n - 1n;

describe('decodeEsdbPosition', () => {
  it('takes each part up to 2^64 - 1', () => {
    expect(decodeEsdbPosition(`${MAX}:${MAX}`)).toEqual({ commit: MAX, prepare: MAX });
    expect(decodeEsdbPosition('0:0')).toEqual({ commit: 0n, prepare: 0n });
  });

  it.each([`${MAX + 1n}:0`, `0:${MAX + 1n}`, '1:99999999999999999999999', '-1:0', '1:', 'x:1', '1:2:3'])('refuses %s', (position) => {
    expect(() => decodeEsdbPosition(position)).toThrow(`Not an EventStoreDB position: ${position}`);
  });
});
