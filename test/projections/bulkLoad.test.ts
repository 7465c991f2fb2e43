/**
 * The bulk load behind rebuild and verify: read by stream, pages cut where a stream ends, and the next
 * page folded while the one before writes. Whatever the page size — a stream in one page, a stream
 * longer than a page, pages of one event — every shadow read model equals the live one; a failing
 * write stops the load with its error; and pages of whole streams really are in the projections' hands
 * two at a time (the overlap this is for), while a page continuing a stream waits.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Database } from '../../src/database/database.js';
import { createStatusChangeEventsProjection } from '../../src/eventManager/statusChangeEventsProjection.js';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import type { Projection } from '../../src/projections/projection.js';
import { bulkLoad } from '../../src/projections/replay.js';
import { deviceRequestPool } from '../deviceDispenses/helpers.js';
import { referenceData } from '../support/fixtures.js';
import { createThenStop } from '../support/misClient.js';
import { projectionsSettled } from '../support/projectionsSettled.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';

const COMPARED = ['device_dispenses', 'licenses'];

describe.each(testBackends())('bulk load on %s', (backend) => {
  let t: TestServer;

  beforeAll(async () => {
    const data = referenceData();
    const nextRequest = deviceRequestPool(data, 50);
    t = await startTestServer({ data, backend });
    const auth = `Bearer ${await t.token()}`;
    for (let i = 0; i < 5; i++) await createThenStop(t, auth, newId(), nextRequest());
    await projectionsSettled(t);
  });
  afterAll(async () => t.close());

  it.each([1, 2, 3, 5, 1000])('given pages of %i events, every shadow read model equals the live one', async (pageSize) => {
    const { stores } = t.server.context;
    const shadows = await Promise.all(t.server.context.projectionDefinitions.filter((p) => p.shadow).map((p) => p.shadow!('verify')));
    let compared = 0;
    try {
      const head = (await stores.eventStore.headPosition())!;
      await bulkLoad(
        stores.eventStore,
        shadows.map((s) => s.projection),
        head,
        { pageSize },
      );
      // The status table has no id to compare by; it is loaded beside the others all the same.
      for (const { table } of shadows.filter((s) => COMPARED.includes(s.table.projection.split(':')[0]!))) {
        await table.complete();
        const { records, rows } = await table.differences(5);
        expect({ table: table.table, rows }).toEqual({ table: table.table, rows: [] });
        expect(records).toBeGreaterThan(0);
        compared += 1;
      }
      expect(compared).toBe(COMPARED.length);
    } finally {
      for (const { table } of shadows) await table.drop();
    }
  });

  it.each([
    [1000, 'holds whole streams', false],
    [1, 'continues streams', true],
  ])(
    'given pages of %i events (each %s), the status-change projection reads stored statuses only for streams it has seen before, and derives the live statuses',
    async (pageSize, _what, looksUp) => {
      const { database, stores } = t.server.context;
      // The projection's database, recording its lookups of stored statuses.
      const lookups: string[] = [];
      const recording: Database = {
        ...database,
        withTransaction: (work) =>
          database.withTransaction((client) =>
            work(
              new Proxy(client, {
                get(target, key) {
                  if (key !== 'query') return Reflect.get(target, key, target) as unknown;
                  return (text: unknown, ...rest: unknown[]) => {
                    if (typeof text === 'string' && text.startsWith('select entity_id, status from')) lookups.push(text);
                    return (target.query as (...args: unknown[]) => unknown).call(target, text, ...rest);
                  };
                },
              }),
            ),
          ),
      };
      const { projection, table } = await (await createStatusChangeEventsProjection(recording)).shadow!('verify');
      const logSize = async () => Number((await database.pool.query<{ n: string }>('select count(*) as n from event_manager_log')).rows[0]!.n);
      try {
        const entries = await logSize();
        await bulkLoad(stores.eventStore, [projection], (await stores.eventStore.headPosition())!, { pageSize });
        // A rebuild's table is new and never analyzed: a lookup there was a full scan per page.
        expect(lookups.length > 0).toBe(looksUp);
        // Completed, it has statistics before it serves (the catch-up's lookups, the queries after a swap).
        const statistics = () => database.pool.query(`select 1 from pg_stats where schemaname = current_schema() and tablename = $1`, [table.table]);
        expect((await statistics()).rows).toEqual([]);
        await table.complete();
        expect((await statistics()).rows.length).toBeGreaterThan(0);
        const { rows } = await database.pool.query<{ n: string; differ: string }>(
          `select count(*) as n, count(*) filter (where l.status is distinct from s.status) as differ
           from event_manager_entity_status l full join ${table.table} s using (entity_type, entity_id)`,
        );
        expect({ differ: Number(rows[0]!.differ), some: Number(rows[0]!.n) > 0 }).toEqual({ differ: 0, some: true });
        // The live projection derived every change already: the shadow's derivations are the same ids.
        expect(await logSize()).toBe(entries);
      } finally {
        await table.drop();
      }
    },
  );

  /**
   * A projection that records when each page is in its hands, and can fail one. With `holdUntilNext`
   * a page's work lasts until the next page is handed over (at most 500 ms), so an overlap shows
   * whatever the database's read time; otherwise 5 ms.
   */
  function recorder({ failAt, holdUntilNext = false }: { failAt?: number; holdUntilNext?: boolean } = {}) {
    const spans: Array<{ first: RecordedEvent; start: number; end: number }> = [];
    let clock = 0;
    const projection: Projection = {
      name: 'recorder',
      streamPrefixes: ['device_dispense-'],
      readCheckpoint: async () => null,
      reset: async () => undefined,
      async handle(events) {
        const span = { first: events[0]!, start: clock++, end: -1 };
        spans.push(span);
        const mine = spans.length;
        if (holdUntilNext) for (let waited = 0; spans.length === mine && waited < 500; waited += 5) await new Promise((resolve) => setTimeout(resolve, 5));
        else await new Promise((resolve) => setTimeout(resolve, 5));
        if (mine === failAt) throw new Error(`page ${failAt} failed`);
        span.end = clock++;
        return true;
      },
    };
    return { projection, spans };
  }

  it('hands a page of whole streams over while the one before still writes; a page continuing a stream waits for it', async () => {
    const { stores } = t.server.context;
    const head = (await stores.eventStore.headPosition())!;
    const whole = recorder({ holdUntilNext: true });
    await bulkLoad(stores.eventStore, [whole.projection], head, { pageSize: 3 });
    // Each dispense is a stream of two events: pages of 3 are cut to whole streams, and after the first
    // (which creates the checkpoints) each starts before the one before has ended.
    expect(whole.spans.length).toBeGreaterThan(2);
    expect(whole.spans.every((s) => s.first.revision === 0n)).toBe(true);
    expect(whole.spans.slice(2).some((s, i) => s.start < whole.spans[i + 1]!.end)).toBe(true);
    const halves = recorder();
    await bulkLoad(stores.eventStore, [halves.projection], head, { pageSize: 1 });
    // Pages of one event: every second page continues a stream and starts only after the one before ended.
    for (let i = 1; i < halves.spans.length; i++)
      if (halves.spans[i]!.first.revision > 0n) expect(halves.spans[i]!.start).toBeGreaterThan(halves.spans[i - 1]!.end);
  });

  it('stops at a failing page with its error', async () => {
    const { stores } = t.server.context;
    const head = (await stores.eventStore.headPosition())!;
    const failing = recorder({ failAt: 3 });
    await expect(bulkLoad(stores.eventStore, [failing.projection], head, { pageSize: 2 })).rejects.toThrow('page 3 failed');
  });
});
