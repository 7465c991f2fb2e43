/**
 * The server survives losing its database mid-load: PGlite's socket cut and restored, a PostgreSQL
 * server's backends terminated, and a private PostgreSQL cluster restarted. Requests during the outage
 * answer 503 in ЕСОЗ error JSON (never 500, never a crash); afterwards every command completes, no
 * event is lost or duplicated, no job is stuck, and the read models equal a fresh replay.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { deviceDispenseStream } from '../../src/domain/deviceDispense/events.js';
import { readWholeStream } from '../../src/eventStore/eventStore.js';
import { READ_MODEL_PROJECTIONS } from '../../src/projections/registry.js';
import { projectionsSettled } from '../support/projectionsSettled.js';
import { verifyReadModels } from '../../src/projections/verify.js';
import { deviceRequestPool, dispensesPath } from '../deviceDispenses/helpers.js';
import { reportSkipped } from '../support/databases.js';
import { openInterruptiblePGlite, startPrivateCluster, terminateBackends, type PrivateCluster } from '../support/faults.js';
import { referenceData } from '../support/fixtures.js';
import { createThenStop } from '../support/misClient.js';
import { newId, startTestServer, type TestServer } from '../support/testServer.js';

const DISPENSES = 18;
const PARALLEL = 6;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Started = { t: TestServer; requests: string[]; fault(): Promise<void>; cleanup?(): Promise<void> };
type Scenario = { name: string; start(): Promise<Started | string> };

/** Fixture reference data with a device request per dispense (one active dispense per request). */
function fixtureData() {
  const data = referenceData();
  const next = deviceRequestPool(data, DISPENSES);
  return { data, requests: Array.from({ length: DISPENSES }, next) };
}

const scenarios: Scenario[] = [
  {
    name: 'pglite: the socket drops for 1.5 s',
    async start() {
      const { database, interrupt } = await openInterruptiblePGlite();
      const { data, requests } = fixtureData();
      const t = await startTestServer({ data, database, env: { JOB_LEASE_SECONDS: '2' } });
      return { t, requests, fault: () => interrupt(1_500) };
    },
  },
  {
    name: 'postgres: every backend of the installation is terminated, twice',
    async start() {
      if (!process.env.DATABASE_URL) return 'no PostgreSQL server at DATABASE_URL';
      const { data, requests } = fixtureData();
      const t = await startTestServer({ data, backend: 'postgres', env: { JOB_LEASE_SECONDS: '2' } });
      const schema = t.env.DATABASE_SCHEMA!;
      return {
        t,
        requests,
        async fault() {
          expect(await terminateBackends(process.env.DATABASE_URL!, schema)).toBeGreaterThan(0);
          await sleep(300);
          await terminateBackends(process.env.DATABASE_URL!, schema);
        },
      };
    },
  },
  {
    name: 'postgres: the PostgreSQL service restarts (a private cluster), down for 1.5 s',
    async start() {
      const cluster: PrivateCluster | string = await startPrivateCluster();
      if (typeof cluster === 'string') return cluster;
      const { data, requests } = fixtureData();
      const t = await startTestServer({ data, env: { DATABASE_URL: cluster.url, JOB_LEASE_SECONDS: '2' } });
      return { t, requests, fault: () => cluster.restart(1_500), cleanup: () => cluster.destroy() };
    },
  },
];

describe.each(scenarios)('database outage mid-load — $name', (scenario) => {
  let cleanup: (() => Promise<void>) | undefined;
  afterAll(async () => cleanup?.());

  it('commands complete, nothing is lost or duplicated, no job is stuck, read models verify clean', async () => {
    const started = await scenario.start();
    if (typeof started === 'string') return reportSkipped(`${scenario.name}: ${started}`);
    const { t, fault, requests } = started;
    cleanup = async () => {
      await t.close();
      await started.cleanup?.();
    };
    const auth = `Bearer ${await t.token()}`;
    const ids = Array.from({ length: DISPENSES }, () => newId());

    let done = 0;
    let next = 0;
    const worker = async () => {
      while (next < DISPENSES) {
        const i = next++;
        await createThenStop(t, auth, ids[i]!, requests[i]!);
        done += 1;
      }
    };
    const load = Promise.all(Array.from({ length: PARALLEL }, worker));
    while (done < PARALLEL && done < DISPENSES) await sleep(20);
    await fault();
    await load;

    for (const id of ids) {
      const res = await request(t.app).get(`${dispensesPath()}/${id}`).set('authorization', auth);
      expect([res.status, res.body.data?.status]).toEqual([200, 'stopped']);
      const events = await readWholeStream(t.server.context.eventStore, deviceDispenseStream(id));
      expect(events.map((e) => e.revision)).toEqual([0n, 1n]); // created once, stopped once
    }
    const { rows } = await t.server.context.database.pool.query<{ status: string; n: string }>('select status, count(*) as n from jobs group by status');
    expect(rows).toEqual([{ status: 'processed', n: String(2 * DISPENSES) }]);
    await projectionsSettled(t);
    const results = await verifyReadModels(t.server.context.stores, READ_MODEL_PROJECTIONS);
    expect(results.map((r) => [r.readModel, r.differences])).toEqual([
      ['device_dispenses', []],
      ['licenses', []],
    ]);
  }, 180_000);
});
