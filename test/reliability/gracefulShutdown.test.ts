/**
 * SIGTERM under load: the server stops accepting, lets the running jobs finish, stops its projections
 * at a checkpoint, closes its pools and exits 0. After it no job is left running (holding a lease),
 * every accepted command is processed after a restart, exactly once, and the read models verify clean.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPGlite } from '../../src/database/pglite.js';
import { basedOn, dispensesPath } from '../deviceDispenses/helpers.js';
import { runCli } from '../support/cli.js';
import { createBody } from '../support/fixtures.js';
import { startServerProcess, writeServerFiles, type ServerProcess } from '../support/serverProcess.js';
import { newId } from '../support/testServer.js';

const COMMANDS = 30;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let dir: string;
let env: Record<string, string>;
let token: string;
let requests: string[];
const servers: ServerProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'esoz-sigterm-'));
  const files = await writeServerFiles(dir, COMMANDS);
  env = {
    ...files.env,
    JOB_CONCURRENCY: '2',
    SHUTDOWN_TIMEOUT_SECONDS: '30',
    LOG_LEVEL: 'info',
  };
  requests = files.requests;
  token = files.token;
});
afterAll(async () => {
  for (const server of servers) await server.kill();
  await rm(dir, { recursive: true, force: true });
});

/** The job path when the server accepted the command (202); null when it no longer took connections. */
async function create(server: ServerProcess, dispenseId: string, deviceRequest: string): Promise<string | null> {
  let res: Response;
  try {
    res = await fetch(`${server.url}${dispensesPath()}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', connection: 'close' },
      body: JSON.stringify(createBody(dispenseId, basedOn(deviceRequest))),
    });
  } catch {
    return null; // refused: the server had stopped accepting
  }
  if (res.status !== 202) throw new Error(`create answered ${res.status}: ${await res.text()}`);
  const body = (await res.json()) as { data: { links: Array<{ href: string }> } };
  return new URL(body.data.links[0]!.href, server.url).pathname;
}

it('finishes running work, exits 0, and loses nothing', async () => {
  const first = await startServerProcess(env);
  servers.push(first);
  const accepted = new Map<string, string>();
  const attempts = requests.map(async (deviceRequest, i) => {
    await sleep(i * 20);
    const id = newId();
    const job = await create(first, id, deviceRequest);
    if (job) accepted.set(id, job);
  });
  while (accepted.size < COMMANDS / 3) await sleep(5);
  const exited = new Promise<number | null>((resolve) => first.child.once('exit', (code) => resolve(code)));
  first.child.kill('SIGTERM');
  expect(await exited).toBe(0);
  await Promise.all(attempts);
  expect(first.output()).toContain('shutting down');
  expect(accepted.size).toBeGreaterThanOrEqual(COMMANDS / 3);

  // No job holds a lease after the process is gone: the ones it ran were finished, not abandoned.
  const database = await openPGlite(join(dir, 'pglite'));
  try {
    const running = await database.pool.query<{ n: string }>(
      `select count(*) as n from jobs where status = 'pending' and lease_id is not null and run_after > now()`,
    );
    expect(running.rows[0]!.n).toBe('0');
  } finally {
    await database.close();
  }

  const second = await startServerProcess(env);
  servers.push(second);
  for (const job of accepted.values()) {
    const deadline = Date.now() + 30_000;
    let status = 0;
    for (;;) {
      const res = await fetch(`${second.url}${job}`, { headers: { authorization: `Bearer ${token}` }, redirect: 'manual' });
      const body = (await res.json()) as { data?: { status?: string } };
      status = res.status;
      if (!(status === 200 && body.data?.status === 'pending') || Date.now() > deadline) break;
      await sleep(50);
    }
    expect(status).toBe(303);
  }
  await second.kill('SIGTERM');
  expect(second.child.exitCode).toBe(0);

  const after = await openPGlite(join(dir, 'pglite'));
  try {
    const { rows } = await after.pool.query<{ stream_name: string; n: string }>(
      `select stream_name, count(*) as n from es_events where stream_name like 'device_dispense-%' group by stream_name`,
    );
    const counts = new Map(rows.map((r) => [r.stream_name.replace('device_dispense-', ''), Number(r.n)]));
    for (const id of accepted.keys()) expect([id, counts.get(id)]).toEqual([id, 1]);
  } finally {
    await after.close();
  }
  const verified = await runCli(['verify'], env);
  expect(verified.stdout).toContain(': equal to a fresh replay');
  expect(verified.code).toBe(0);
}, 180_000);
