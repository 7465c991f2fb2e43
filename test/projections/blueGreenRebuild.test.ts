/**
 * Blue/green rebuild: the read models are rebuilt beside the live ones while the server serves and
 * keeps writing, then swapped in. Queries answer throughout, nothing written during the rebuild is
 * lost at the swap, and a tampered live row is repaired (so the swap really replaced the table).
 * Server-side (POST /api/admin/projections/all/rebuild) on PGlite and PostgreSQL; the CLI as a second
 * process on PostgreSQL. Also the swap rule itself: a shadow behind the live checkpoint is not swapped.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { READ_MODEL_PROJECTIONS } from '../../src/projections/registry.js';
import { bulkLoad, replay } from '../../src/projections/replay.js';
import { verifyReadModels } from '../../src/projections/verify.js';
import { deviceRequestPool, dispensesPath } from '../deviceDispenses/helpers.js';
import { runCli } from '../support/cli.js';
import { referenceData } from '../support/fixtures.js';
import { createThenStop } from '../support/misClient.js';
import { projectionsSettled } from '../support/projectionsSettled.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(testBackends())('blue/green rebuild on %s', (backend) => {
  let t: TestServer;
  let auth: string;
  let nextRequest: () => string;
  const created: string[] = [];

  async function createSome(n: number) {
    for (let i = 0; i < n; i++) {
      const id = newId();
      await createThenStop(t, auth, id, nextRequest());
      created.push(id);
    }
  }
  /** Every created dispense, as the search (the live read model) shows it. */
  async function listed(): Promise<Map<string, string>> {
    const res = await request(t.app).get(`${dispensesPath()}?page_size=300`).set('authorization', auth);
    expect(res.status).toBe(200);
    return new Map((res.body.data as Array<{ id: string; status: string }>).map((d) => [d.id, d.status]));
  }
  async function waitUntilListed() {
    for (let i = 0; i < 200 && (await listed()).size < created.length; i++) await sleep(50);
  }

  beforeAll(async () => {
    const data = referenceData();
    nextRequest = deviceRequestPool(data, 400);
    t = await startTestServer({ data, backend });
    auth = `Bearer ${await t.token()}`;
    await createSome(6);
  });
  afterAll(async () => t.close());

  it('does not swap a shadow that is behind the live checkpoint; swaps it once caught up', async () => {
    const { stores } = t.server.context;
    const live = t.server.context.projectionDefinitions.find((p) => p.name === 'device_dispenses')!;
    const { projection, table } = await live.shadow!('rebuild');
    await bulkLoad(stores.eventStore, [projection], (await stores.eventStore.headPosition())!);
    await createSome(1); // the live projection moves past the shadow
    await waitUntilListed();
    const compare = (a: string, b: string) => stores.eventStore.comparePositions(a, b);
    // As rebuildProjections asks it for a table commands write inline: every committed event in the shadow.
    expect(table.writtenInline).toBe(true);
    const caughtUp: Parameters<typeof table.trySwap>[1] = async (sql, position) =>
      !(await stores.eventStore.hasEventsAfter!(sql, position, projection.streamPrefixes));
    expect(await table.trySwap(compare, caughtUp)).toBe(false);
    await replay(stores.eventStore, projection);
    expect(await table.trySwap(compare, caughtUp)).toBe(true);
    expect([...(await listed()).keys()].sort()).toEqual([...created].sort());
    await projectionsSettled(t);
    expect((await verifyReadModels(stores, READ_MODEL_PROJECTIONS)).map((r) => r.differences)).toEqual([[], []]);
  });

  it('server-side: queries keep answering and writes keep landing while every projection is rebuilt and swapped', async () => {
    const { database, stores } = t.server.context;
    // Tamper with the live table: only a real rebuild + swap brings the row back.
    const tampered = created[0]!;
    await database.pool.query('delete from device_dispenses where id = $1', [tampered]);
    expect((await listed()).has(tampered)).toBe(false);

    let writing = true;
    const writes = (async () => {
      while (writing && created.length < 150) await createSome(1);
    })();
    const failures: unknown[] = [];
    let reads = 0;
    const reading = (async () => {
      while (writing) {
        // Read-your-writes across the swap: every dispense whose jobs had finished before this query
        // (the tampered one aside) must be in its answer.
        const known = created.filter((id) => id !== tampered);
        const res = await request(t.app).get(`${dispensesPath()}?page_size=300`).set('authorization', auth);
        if (res.status !== 200) failures.push(res.body);
        else {
          const shown = new Set((res.body.data as Array<{ id: string }>).map((d) => d.id));
          const missing = known.filter((id) => !shown.has(id));
          if (missing.length > 0) failures.push({ missing });
        }
        reads += 1;
      }
    })();

    const admin = `Bearer ${await t.token({ scope: 'admin:read admin:write' })}`;
    for (let round = 0; round < 3; round++) {
      const started = await request(t.app).post('/api/admin/projections/all/rebuild').set('authorization', admin);
      expect(started.status).toBe(202);
      expect(started.body.data).toMatchObject({ projections: ['device_dispenses', 'licenses', 'status_change_events'], status: 'running' });
      const again = await request(t.app).post('/api/admin/projections/licenses/rebuild').set('authorization', admin);
      if (again.status !== 202) expect([again.status, again.body.error.message]).toEqual([409, 'Projection licenses is being rebuilt']);
      await t.server.context.rebuilds.idle();
      const health = await request(t.app).get('/api/admin/projections').set('authorization', admin);
      expect(health.body.data.map((p: { name: string; rebuild: { status: string } }) => [p.name, p.rebuild.status])).toEqual([
        ['device_dispenses', 'done'],
        ['licenses', 'done'],
        ['status_change_events', 'done'],
      ]);
      await createSome(1);
    }
    writing = false;
    await Promise.all([writes, reading]);

    expect(failures).toEqual([]);
    expect(reads).toBeGreaterThan(0);
    await waitUntilListed();
    const shown = await listed();
    expect([...shown.keys()].sort()).toEqual([...created].sort()); // the tampered row is back, none lost
    expect(new Set(shown.values())).toEqual(new Set(['stopped']));
    await projectionsSettled(t); // verify replays up to the stored checkpoints; inline rows run ahead of them
    const results = await verifyReadModels(stores, READ_MODEL_PROJECTIONS);
    expect(results.map((r) => [r.readModel, r.differences])).toEqual([
      ['device_dispenses', []],
      ['licenses', []],
    ]);
    // Every dispense's StatusChangeEvents exist exactly once in the event-manager log.
    const { rows } = await database.pool.query<{ n: string }>(
      `select count(*) as n from event_manager_log where entity_id = any($1::text[]) group by id having count(*) > 1`,
      [created],
    );
    expect(rows).toEqual([]);
    const log = await database.pool.query<{ n: string }>(`select count(*) as n from event_manager_log where entity_id = any($1::text[])`, [created]);
    expect(Number(log.rows[0]!.n)).toBe(created.length * 2); // in_progress, stopped
  }, 120_000);

  it('answers 404 for an unknown projection and 403 without admin:write', async () => {
    const reader = `Bearer ${await t.token({ scope: 'admin:read' })}`;
    const denied = await request(t.app).post('/api/admin/projections/all/rebuild').set('authorization', reader);
    expect(denied.status).toBe(403);
    const admin = `Bearer ${await t.token({ scope: 'admin:write' })}`;
    const unknown = await request(t.app).post('/api/admin/projections/nope/rebuild').set('authorization', admin);
    expect([unknown.status, unknown.body.error]).toEqual([404, { type: 'not_found', message: 'Projection nope not found' }]);
  });

  if (backend === 'postgres')
    it('the CLI rebuilds beside a running server (two processes on one database)', async () => {
      let writing = true;
      const writes = (async () => {
        while (writing && created.length < 280) await createSome(1);
      })();
      const rebuilt = await runCli(['rebuild', 'all'], t.env);
      writing = false;
      await writes;
      expect([rebuilt.code, rebuilt.stderr]).toEqual([0, expect.stringMatching(/rebuild device_dispenses, licenses, status_change_events: \d+ events/)]);
      await waitUntilListed();
      expect([...(await listed()).keys()].sort()).toEqual([...created].sort());
      await projectionsSettled(t);
      const results = await verifyReadModels(t.server.context.stores, READ_MODEL_PROJECTIONS);
      expect(results.map((r) => r.differences)).toEqual([[], []]);
    }, 120_000);
});
