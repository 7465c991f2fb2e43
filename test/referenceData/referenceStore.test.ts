/**
 * The reference store on its own (PGlite, and the PostgreSQL server when DATABASE_URL is set): a load
 * into empty tables (straight in) and one that repeats an id (read again, staged); the change log's
 * reads as of a time across versions and a removal; the cache's invalidation from the log.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Database } from '../../src/database/database.js';
import { createPostgresReferenceStore } from '../../src/referenceData/postgresReferenceStore.js';
import { createReferenceCache, createReferenceReader } from '../../src/referenceData/referenceCache.js';
import { importLineOf } from '../../src/referenceData/referenceImport.js';
import type { ReferenceStore } from '../../src/referenceData/referenceStore.js';
import type { ReferenceKind, ReferenceRecord } from '../../src/referenceData/records.js';
import { databaseFactories } from '../support/databases.js';

const person = (id: string, version = 1, status = 'active') => ({ id, version, status, verification_status: 'VERIFIED' });
const source = (records: Array<[ReferenceKind, ReferenceRecord]>) =>
  async function* () {
    let line = 0;
    for (const [kind, record] of records) yield importLineOf(kind, record, ++line);
  };
const pause = () => new Promise((resolve) => setTimeout(resolve, 15));

describe.each(databaseFactories())('reference store on $name', (factory) => {
  let database: Database;
  let store: ReferenceStore;
  beforeAll(async () => {
    database = await factory.open();
    store = await createPostgresReferenceStore(database);
  });
  afterAll(async () => database?.close());

  it('loads empty kinds straight in, and reads a file that repeats an id again through the staged merge', async () => {
    const first = await store.importLines(
      source([
        ['persons', person('p1')],
        ['persons', person('p2')],
        ['users', { id: 'u1', version: 1, party_id: 'x' }],
      ]),
      {
        actor: 'test',
      },
    );
    expect(first).toMatchObject({ lines: 3, written: 3, skippedOlder: 0, unchanged: 0 });
    // Divisions are empty: the repeated d1 (version 1, then 2) makes the straight load fail, and the staged one keeps version 2.
    const division = (version: number) => ({ id: 'd1', version, legal_entity_id: 'le', status: 'ACTIVE', name: 'Пункт', dls_verified: true });
    const repeated = await store.importLines(
      source([
        ['divisions', division(1)],
        ['divisions', division(2)],
        ['persons', person('p1')],
      ]),
      { actor: 'test' },
    );
    expect(repeated).toMatchObject({ lines: 3, written: 1, skippedOlder: 1, unchanged: 1 });
    expect((await store.get('divisions', 'd1'))?.version).toBe(2);
    const { rows } = await database.pool.query<{ n: number }>(`select count(*)::int as n from reference_changes where kind = 'divisions'`);
    expect(rows[0]!.n).toBe(1);
  });

  it('reads a record as of any time: each version while it was current, nothing before the first or after a removal', async () => {
    const before = new Date();
    await pause();
    await store.put('persons', person('p9', 1), 'test');
    await pause();
    const atFirst = new Date();
    await pause();
    await store.put('persons', person('p9', 2, 'inactive'), 'test');
    await pause();
    const atSecond = new Date();
    await pause();
    await store.importLines(source([['persons', person('p1')]]), { actor: 'test', replace: 'persons' });
    await pause();
    expect(await store.asOf('persons', 'p9', before)).toBeNull();
    expect(await store.asOf('persons', 'p9', atFirst)).toMatchObject({ version: 1, record: { status: 'active' } });
    expect(await store.asOf('persons', 'p9', atSecond)).toMatchObject({ version: 2, record: { status: 'inactive' } });
    expect(await store.asOf('persons', 'p9', new Date())).toBeNull();
    expect(await store.get('persons', 'p9')).toBeNull();
  });

  it('the cache serves what it holds without a lookup, and drops exactly what the change log names', async () => {
    const cache = createReferenceCache(100);
    const reader = createReferenceReader(store, cache);
    await store.put('persons', person('c1'), 'test');
    await store.put('persons', person('c2'), 'test');
    let seen = await store.head();
    const follow = async () => {
      const changes = await store.changesSince(seen, 100);
      cache.invalidate(changes);
      seen = changes.at(-1)?.seq ?? seen;
    };
    const first = await reader.view({ persons: ['c1', 'c2', 'nobody'] });
    expect([first.person('c1')?.status, first.person('nobody')]).toEqual(['active', undefined]);
    const lookups = reader.stats().lookups;
    await reader.view({ persons: ['c1', 'c2', 'nobody'] });
    expect(reader.stats().lookups).toBe(lookups);
    await store.put('persons', person('nobody'), 'test');
    await store.put('persons', person('c1', 2, 'inactive'), 'test');
    await follow();
    const after = await reader.view({ persons: ['c1', 'c2', 'nobody'] });
    expect([after.person('c1')?.status, after.person('c2')?.status, after.person('nobody')?.status]).toEqual(['inactive', 'active', 'active']);
    expect(reader.stats().lookups).toBe(lookups + 1);
  });
});
