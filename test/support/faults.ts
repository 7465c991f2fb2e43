/**
 * Ways to take the database away from a running server, for the fault-injection suite: cut the
 * PGlite socket (its "restart"), terminate a PostgreSQL server's backends of one installation, or
 * restart a private PostgreSQL cluster that only this test uses (so no other suite loses its server).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Database } from '../../src/database/database.js';
import { servePGlite } from '../../src/database/pglite.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** PGlite behind its socket server, which the test can stop (every connection drops, an open
 * transaction rolls back) and start again. */
export async function openInterruptiblePGlite(): Promise<{ database: Database; interrupt(downMs: number): Promise<void> }> {
  const { database, socketServer } = await servePGlite();
  return {
    database,
    async interrupt(downMs) {
      await socketServer.stop();
      await sleep(downMs);
      await socketServer.start();
    },
  };
}

/**
 * Terminates every session of the installation in `schema` (application_name esoz-registry/<schema>)
 * and returns once those backends have exited. pg_terminate_backend only signals: until a backend
 * has gone, a request can still be handed its dying connection, and that request is part of the
 * outage (503), not of what follows it.
 */
export async function terminateBackends(connectionString: string, schema: string): Promise<number> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    // Two statements: in one, the planner may call pg_terminate_backend before filtering by name.
    const { rows } = await client.query<{ pid: number }>(`select pid from pg_stat_activity where application_name = $1`, [`esoz-registry/${schema}`]);
    const pids = rows.map((row) => row.pid);
    await client.query(`select pg_terminate_backend(pid) from unnest($1::int[]) as pid`, [pids]);
    for (let waited = 0; ; waited += 10) {
      const { rows: left } = await client.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where pid = any($1::int[])`, [pids]);
      if (left[0]!.n === 0) break;
      if (waited > 10_000) throw new Error(`${left[0]!.n} terminated backends still running after 10 s`);
      await sleep(10);
    }
    return pids.length;
  } finally {
    await client.end();
  }
}

const BIN = ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin'].find((dir) => existsSync(join(dir, 'initdb')));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export type PrivateCluster = { url: string; restart(downMs: number): Promise<void>; destroy(): Promise<void> };

/** A throw-away PostgreSQL cluster (initdb + pg_ctl as the postgres user), or null with the reason. */
export async function startPrivateCluster(): Promise<PrivateCluster | string> {
  if (!BIN) return 'no PostgreSQL server binaries (initdb) on this machine';
  if (process.getuid?.() !== 0) return 'starting a private PostgreSQL cluster needs root (to run initdb as the postgres user)';
  const dir = await mkdtemp(join(tmpdir(), 'pgcluster-'));
  const { stdout } = await run('id', ['-u', 'postgres']);
  const { stdout: gid } = await run('id', ['-g', 'postgres']);
  await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  const data = join(dir, 'data');
  const port = await freePort();
  const asPostgres = (tool: string, args: string[]) => run('runuser', ['-u', 'postgres', '--', join(BIN, tool), ...args], { cwd: dir });
  await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
  const start = () => asPostgres('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', 'start']);
  const stop = () => asPostgres('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async restart(downMs) {
      await stop();
      await sleep(downMs);
      await start();
    },
    async destroy() {
      await stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
