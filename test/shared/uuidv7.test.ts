/** The process's UUIDv7s: valid version-7 ids (RFC 9562), the time in their first 48 bits, strictly increasing. */
import { describe, expect, it } from '@jest/globals';
import { validate, version } from 'uuid';
import { uuidv7 } from '../../src/shared/uuidv7.js';

describe('uuidv7', () => {
  it('makes valid, unique, increasing version-7 ids carrying the time', () => {
    const before = Date.now();
    const ids = Array.from({ length: 20_000 }, () => uuidv7());
    for (const [i, id] of ids.entries()) {
      expect(validate(id) && version(id) === 7).toBe(true);
      expect('89ab').toContain(id[19]);
      if (i > 0) expect(id > ids[i - 1]!).toBe(true);
    }
    const ms = parseInt(ids[0]!.replace(/-/g, '').slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(Date.now());
  });
});
