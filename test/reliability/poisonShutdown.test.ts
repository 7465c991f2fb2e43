/**
 * A server process whose projections are halted at a poison event (issue 28) still serves, says so in
 * /health/ready, logs the event once, and on SIGTERM exits 0 well within SHUTDOWN_TIMEOUT_SECONDS
 * (before, the wedged projections' retry loop and drain made it time out). PGlite: the poison is
 * appended before the server starts (it holds the data directory); the PostgreSQL server: while it runs.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPostgres, type Database } from '../../src/database/database.js';
import { openPGlite } from '../../src/database/pglite.js';
import { createPostgresEventStore } from '../../src/eventStore/postgresEventStore.js';
import { dropSchema, freshSchemaName } from '../support/databases.js';
import { eventually, newEvent } from '../support/events.js';
import { startServerProcess, writeServerFiles, type ServerProcess } from '../support/serverProcess.js';
import { newId } from '../support/testServer.js';

const SHUTDOWN_TIMEOUT_SECONDS = 5;
const HALTED = 'projection cannot apply an event: halted at it';

async function appendPoison(database: Database) {
  const store = await createPostgresEventStore(database);
  await store.appendToStream(`device_dispense-${newId()}`, [newEvent('DeviceDispenseCreated', { garbage: true })], { expectedRevision: 'no_stream' });
}

const backends = process.env.DATABASE_URL ? (['pglite', 'postgres'] as const) : (['pglite'] as const);

describe.each(backends)('SIGTERM with halted projections on %s', (backend) => {
  let dir: string;
  let env: Record<string, string>;
  let server: ServerProcess | null = null;
  const schema = freshSchemaName();
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'esoz-poison-'));
    const files = await writeServerFiles(dir, 1);
    env = {
      ...files.env,
      SHUTDOWN_TIMEOUT_SECONDS: String(SHUTDOWN_TIMEOUT_SECONDS),
      LOG_LEVEL: 'info',
      ...(backend === 'postgres' ? { DATABASE_URL: process.env.DATABASE_URL!, DATABASE_SCHEMA: schema } : {}),
    };
  });
  afterAll(async () => {
    await server?.kill();
    if (backend === 'postgres') await dropSchema(schema);
    await rm(dir, { recursive: true, force: true });
  });

  it('serves degraded, logs the event once per projection, and exits 0 within the shutdown timeout', async () => {
    if (backend === 'pglite') {
      const database = await openPGlite(join(dir, 'pglite'));
      await appendPoison(database);
      await database.close();
    }
    server = await startServerProcess(env);
    if (backend === 'postgres') {
      const database = await openPostgres(process.env.DATABASE_URL!, { schema });
      await appendPoison(database);
      await database.close();
    }
    const running = server;
    let ready: { status: number; body: { status: string; degraded: Array<{ part: string }> } } | null = null;
    await eventually(
      async () => {
        const res = await fetch(`${running.url}/health/ready`);
        ready = { status: res.status, body: (await res.json()) as { status: string; degraded: Array<{ part: string }> } };
        return ready.body.degraded?.length === 2;
      },
      20_000,
      'two halted projections in readiness',
    );
    expect(ready!.status).toBe(200);
    expect(ready!.body.degraded.map((d) => d.part).sort()).toEqual(['projection device_dispenses', 'projection status_change_events']);
    // Some time halted: no retry loop fills the log meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(
      running
        .output()
        .split('\n')
        .filter((line) => line.includes(HALTED)),
    ).toHaveLength(2);
    expect(running.output()).not.toContain('projection recovered');

    const started = Date.now();
    const exited = new Promise<number | null>((resolve) => running.child.once('exit', (code) => resolve(code)));
    running.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(SHUTDOWN_TIMEOUT_SECONDS * 1000);
    expect(running.output()).not.toContain('shutdown timed out');
  }, 120_000);
});
