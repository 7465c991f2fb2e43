/**
 * examples/mis-walkthrough.sh against a real server process on a fresh data directory, signing the way
 * the compose stack does: with the server's own development CA (the CLI on the server's DATA_DIR, as
 * `docker compose exec app … sign` does on the app's volume). A signer that prints nothing stops the
 * script before anything is sent: no empty signed_data ever reaches the server.
 */
import { afterEach, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServerProcess, type ServerProcess } from '../support/serverProcess.js';

let server: ServerProcess | undefined;
let dataDir: string | undefined;
afterEach(async () => {
  await server?.kill('SIGTERM');
  server = undefined;
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function startDemoServer(): Promise<{ url: string; token: string }> {
  dataDir = await mkdtemp(join(tmpdir(), 'walkthrough-'));
  server = await startServerProcess({ NODE_ENV: 'development', DATA_DIR: dataDir });
  const deadline = Date.now() + 10_000;
  while (!/demo access token[^\n]*\n\s+(\S+)/.test(server.output()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return { url: server.url, token: /demo access token[^\n]*\n\s+(\S+)/.exec(server.output())![1]! };
}

function walkthrough(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    delete childEnv.DATABASE_URL;
    const child = spawn('bash', ['examples/mis-walkthrough.sh'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

it('runs the whole round trip, signing with the server’s own CA', async () => {
  const { url, token } = await startDemoServer();
  const sign = `env NODE_ENV=development DATA_DIR=${dataDir} LOG_LEVEL=warn ${process.execPath} node_modules/tsx/dist/cli.mjs src/cli/main.ts sign /dev/stdin`;
  const run = await walkthrough({ API: url, TOKEN: token, SIGN: sign });
  expect(run.output).toMatch(/== complete it[^\n]*\n(.*\n)*?completed\n/);
  expect(run.output).toMatch(/== create another and stop it\n(.*\n)*?stopped\n/);
  expect(run.output).toMatch(/== create a third and mark it in error \(signed\)\n(.*\n)*?entered_in_error\n/);
  expect(run.output).toContain('== done');
  expect(run.code).toBe(0);
}, 180_000);

it('stops at a signer that prints no signature, before sending it', async () => {
  const { url, token } = await startDemoServer();
  const run = await walkthrough({ API: url, TOKEN: token, SIGN: 'true' });
  expect(run.code).not.toBe(0);
  expect(run.output).toContain("the signer printed no compact JWS: ''");
  expect(run.output).not.toContain('== create another');
  // Nothing was sent for the complete: the first dispense is still in progress.
  const dispenseId = /"href":"\/api\/patients\/[^/]+\/device_dispenses\/([0-9a-f-]+)"/.exec(run.output)?.[1];
  expect(dispenseId).toBeDefined();
  const shown = await fetch(`${url}/api/patients/5062a28b-9fe3-4ec3-afa6-be917f5d6f01/device_dispenses/${dispenseId}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(((await shown.json()) as { data: { status: string } }).data.status).toBe('in_progress');
}, 180_000);
