/**
 * kill -9 under load. (1) The only server process dies while commands are in flight and is started
 * again on the same data: every command it accepted (202) is processed, none twice, and the read
 * models equal a fresh replay. (2) Two processes share one PostgreSQL database and one of them dies
 * mid-job: the other finishes its jobs within about one job lease, exactly once in effect.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPostgres, type Database } from '../../src/database/database.js';
import { openPGlite } from '../../src/database/pglite.js';
import { basedOn, dispensesPath } from '../deviceDispenses/helpers.js';
import { runCli } from '../support/cli.js';
import { dropSchema, freshSchemaName, reportSkipped } from '../support/databases.js';
import { createBody } from '../support/fixtures.js';
import { startServerProcess, writeServerFiles, type ServerProcess } from '../support/serverProcess.js';
import { newId, testBackends, type Backend } from '../support/testServer.js';

const COMMANDS = 24;
const LEASE_SECONDS = 3;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Installation = { env: Record<string, string>; requests: string[]; token: string; openDatabase(): Promise<Database>; cleanup(): Promise<void> };

async function install(backend: Backend): Promise<Installation> {
  const dir = await mkdtemp(join(tmpdir(), 'esoz-kill-'));
  const files = await writeServerFiles(dir, COMMANDS);
  const schema = backend === 'postgres' ? freshSchemaName() : undefined;
  const env: Record<string, string> = {
    ...files.env,
    JOB_LEASE_SECONDS: String(LEASE_SECONDS),
    JOB_CONCURRENCY: '4',
    ...(schema ? { DATABASE_URL: process.env.DATABASE_URL!, DATABASE_SCHEMA: schema } : {}),
  };
  return {
    env,
    requests: files.requests,
    token: files.token,
    openDatabase: () => (schema ? openPostgres(process.env.DATABASE_URL!, { schema }) : openPGlite(join(dir, 'pglite'))),
    async cleanup() {
      if (schema) await dropSchema(schema);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** POSTs a create; the job href when accepted, null when the process was gone. */
async function create(server: ServerProcess, token: string, dispenseId: string, deviceRequest: string): Promise<string | null> {
  try {
    const res = await fetch(`${server.url}${dispensesPath()}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(createBody(dispenseId, basedOn(deviceRequest))),
    });
    if (res.status !== 202) throw new Error(`create answered ${res.status}: ${await res.text()}`);
    const body = (await res.json()) as { data: { links: Array<{ href: string }> } };
    return new URL(body.data.links[0]!.href, server.url).pathname;
  } catch (error) {
    // A connection refused or reset can reach us before the child's exit does: give it a moment.
    const exited = () => server.child.exitCode !== null || server.child.signalCode !== null;
    for (let waited = 0; !exited() && waited < 2_000; waited += 20) await sleep(20);
    if (exited()) return null; // killed: not accepted
    throw error;
  }
}

async function jobStatus(server: ServerProcess, token: string, path: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` }, redirect: 'manual' });
    const body = (await res.json()) as { data?: { status?: string } };
    if (!(res.status === 200 && body.data?.status === 'pending')) return res.status;
    if (Date.now() > deadline) return 0;
    await sleep(50);
  }
}

/** Each accepted dispense's stream holds exactly its one creation event; no job is left pending. */
async function expectExactlyOnce(installation: Installation, accepted: Map<string, string>) {
  const database = await installation.openDatabase();
  try {
    const { rows } = await database.pool.query<{ stream_name: string; n: string }>(
      `select stream_name, count(*) as n from es_events where stream_name like 'device_dispense-%' group by stream_name`,
    );
    const counts = new Map(rows.map((r) => [r.stream_name.replace('device_dispense-', ''), Number(r.n)]));
    for (const id of accepted.keys()) expect([id, counts.get(id)]).toEqual([id, 1]);
    const pending = await database.pool.query<{ n: string }>(`select count(*) as n from jobs where status = 'pending'`);
    expect(pending.rows[0]!.n).toBe('0');
  } finally {
    await database.close();
  }
}

describe.each(testBackends())('kill -9 of the server under load on %s, then a restart', (backend) => {
  let installation: Installation;
  const servers: ServerProcess[] = [];
  beforeAll(async () => void (installation = await install(backend)));
  afterAll(async () => {
    for (const server of servers) await server.kill();
    await installation.cleanup();
  });

  it('loses no accepted command and duplicates no event; the read models verify clean', async () => {
    const first = await startServerProcess(installation.env);
    servers.push(first);
    const accepted = new Map<string, string>();
    const attempts = installation.requests.map(async (deviceRequest, i) => {
      await sleep(i * 15); // a steady stream, so the kill lands mid-load
      const id = newId();
      const job = await create(first, installation.token, id, deviceRequest);
      if (job) accepted.set(id, job);
    });
    while (accepted.size < COMMANDS / 3) await sleep(5);
    await first.kill('SIGKILL');
    await Promise.all(attempts);
    expect(accepted.size).toBeGreaterThanOrEqual(COMMANDS / 3);

    const second = await startServerProcess(installation.env);
    servers.push(second);
    for (const job of accepted.values()) expect(await jobStatus(second, installation.token, job, 30_000)).toBe(303);
    for (const id of accepted.keys()) {
      const res = await fetch(`${second.url}${dispensesPath()}/${id}`, { headers: { authorization: `Bearer ${installation.token}` } });
      expect(res.status).toBe(200);
    }
    await second.kill('SIGTERM');
    await expectExactlyOnce(installation, accepted);
    const verified = await runCli(['verify'], installation.env);
    expect(verified.stdout).toContain(': equal to a fresh replay');
    expect(verified.code).toBe(0);
  }, 180_000);
});

describe('two processes on one PostgreSQL database; one is killed mid-job', () => {
  let installation: Installation | undefined;
  const servers: ServerProcess[] = [];
  beforeAll(async () => {
    if (process.env.DATABASE_URL) installation = await install('postgres');
    else reportSkipped('two processes on one database: no PostgreSQL server at DATABASE_URL');
  });
  afterAll(async () => {
    for (const server of servers) await server.kill();
    await installation?.cleanup();
  });

  it('the survivor finishes every job within about one lease, exactly once in effect; projections move over', async () => {
    if (!installation) return;
    const doomed = await startServerProcess(installation.env); // starts first: it holds the projections
    servers.push(doomed);
    const survivor = await startServerProcess(installation.env);
    servers.push(survivor);
    const accepted = new Map<string, string>();
    await Promise.all(
      installation.requests.map(async (deviceRequest) => {
        const id = newId();
        const job = await create(doomed, installation!.token, id, deviceRequest);
        if (job) accepted.set(id, job);
      }),
    );
    await doomed.kill('SIGKILL');
    const killedAt = Date.now();
    for (const job of accepted.values()) expect(await jobStatus(survivor, installation.token, job, 30_000)).toBe(303);
    // One lease for a job the dead process held, a standby retry for its projections, and slack.
    expect(Date.now() - killedAt).toBeLessThan((LEASE_SECONDS + 8) * 1000);
    expect(accepted.size).toBe(COMMANDS);
    // The survivor itself takes every projection over within a few seconds of the kill (it stood by while
    // the doomed one held their advisory locks): /api/admin/projections shows them active_here, caught up.
    type Health = Array<{ name: string; active_here: boolean; lag: number }>;
    const projectionsOfSurvivor = async (): Promise<Health> => {
      const res = await fetch(`${survivor.url}/api/admin/projections`, { headers: { authorization: `Bearer ${installation!.token}` } });
      return ((await res.json()) as { data: Health }).data;
    };
    let projections = await projectionsOfSurvivor();
    while (!projections.every((p) => p.active_here && p.lag === 0) && Date.now() - killedAt < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      projections = await projectionsOfSurvivor();
    }
    expect(projections.length).toBeGreaterThanOrEqual(3);
    expect(projections.map((p) => [p.name, p.active_here, p.lag])).toEqual(projections.map((p) => [p.name, true, 0]));
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    await survivor.kill('SIGTERM');
    await expectExactlyOnce(installation, accepted);
  }, 180_000);
});
