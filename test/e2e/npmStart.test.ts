/**
 * `npm start` on a fresh data directory serves on the embedded default and prints the URL and a demo
 * token that the server accepts.
 */
import { afterAll, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let child: ChildProcess | undefined;
let dataDir: string | undefined;
afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it('prints the URL and a working demo token', async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'npm-start-'));
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
  delete env.DATABASE_URL; // the embedded default, whatever the CI run exports
  child = spawn('node', ['node_modules/tsx/dist/cli.mjs', 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 60_000;
  while (!/demo access token[^\n]*\n\s+(\S+)/.test(output)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const url = /listening on (http:\/\/\S+)/.exec(output)![1]!;
  const token = /demo access token[^\n]*\n\s+(\S+)/.exec(output)![1]!;

  const missing = await fetch(`${url}/api/jobs/00000000-0000-0000-0000-000000000000`, { headers: { authorization: `Bearer ${token}` } });
  expect(missing.status).toBe(404); // the token was accepted; the job just does not exist
  expect(((await missing.json()) as { error: unknown }).error).toEqual({ type: 'not_found', message: 'Job not found' });
  const anonymous = await fetch(`${url}/api/jobs/00000000-0000-0000-0000-000000000000`);
  expect(anonymous.status).toBe(401);
}, 90_000);
