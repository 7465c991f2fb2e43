/**
 * Production mode as an operator meets it, on real processes (src/main.ts and the CLI through tsx):
 * NODE_ENV=production refuses to start — one line on stderr, exit 1, nothing on stdout — naming every
 * missing setting, a look-alike variable or an unknown one with our prefix, and empty reference tables;
 * configured completely (PostgreSQL, a JWKS, a CA, an anchor key, a witness file, the reference data)
 * it starts, writes only JSON lines to stdout and never a token, generates no key; the CLI mints no
 * token there. Development (the default) warns once that it is development, and once per look-alike.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { KNOWN_SETTINGS } from '../../src/config.js';
import { legacyImportLines, parseReferenceData } from '../../src/referenceData/referenceData.js';
import { dropSchema, freshSchemaName, reportSkipped } from '../support/databases.js';
import { referenceData } from '../support/fixtures.js';
import { startServerProcess, writeServerFiles, type ServerProcess } from '../support/serverProcess.js';

type Exit = { code: number | null; stdout: string; stderr: string };

/** The CI's environment without any of our settings: what jest and the runner export must not count as a mistake. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of KNOWN_SETTINGS) delete env[name];
  return env;
}

function runToExit(script: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { env: { ...baseEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`${script} did not exit:\n${stdout}${stderr}`))), timeoutMs);
    child.once('exit', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
  });
}
const startMain = (env: Record<string, string>) => runToExit('src/main.ts', [], { PORT: '0', ...env });

/** Every line of stdout is a JSON object (pino's). */
function expectJsonLines(stdout: string) {
  const lines = stdout.split('\n').filter((line) => line !== '');
  for (const line of lines) expect(() => JSON.parse(line) as object).not.toThrow();
  return lines.map((line) => JSON.parse(line) as { level: number; msg: string } & Record<string, unknown>);
}
const JWT = /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/;

const url = process.env.DATABASE_URL;
if (!url) reportSkipped('production mode on PostgreSQL: no DATABASE_URL');

let dir: string;
let files: Awaited<ReturnType<typeof writeServerFiles>>;
const schemas: string[] = [];
const servers: ServerProcess[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'production-mode-'));
  files = await writeServerFiles(dir, 1);
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  await writeFile(join(dir, 'anchor.jwk.json'), JSON.stringify(await exportJWK(privateKey)), { mode: 0o600 });
});
afterAll(async () => {
  for (const server of servers) await server.kill('SIGTERM');
  for (const schema of schemas) await dropSchema(schema).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

/** Everything production needs, on a fresh schema of the test server; `REFERENCE_DATA_FILE` only when asked. */
function productionEnv({ reference }: { reference: boolean }): Record<string, string> {
  const schema = freshSchemaName();
  schemas.push(schema);
  const { REFERENCE_DATA_FILE, ...settings } = files.env;
  return {
    ...settings,
    ...(reference ? { REFERENCE_DATA_FILE: REFERENCE_DATA_FILE! } : {}),
    NODE_ENV: 'production',
    DATABASE_URL: url!,
    DATABASE_SCHEMA: schema,
    AUDIT_ANCHOR_KEY_FILE: join(dir, 'anchor.jwk.json'),
    AUDIT_WITNESS_FILE: join(dir, 'witness.jsonl'),
  };
}

describe('NODE_ENV=production refuses to start', () => {
  it('naming every missing setting in one line', async () => {
    const exit = await startMain({ NODE_ENV: 'production', DATA_DIR: join(dir, 'empty') });
    expect(exit.code).toBe(1);
    expect(exit.stdout).toBe('');
    expect(exit.stderr).toBe(
      'Invalid configuration for production (NODE_ENV=production): AUTH_JWKS_FILE or AUTH_JWKS_URL is required (the access-token keys); ' +
        'DS_TRUSTED_CA_FILE is required (the signature trust store); AUDIT_ANCHOR_KEY_FILE is required (the anchor signing key); ' +
        'AUDIT_WITNESS_URL or AUDIT_WITNESS_FILE is required (the anchor witness); ' +
        'DATABASE_URL is required (a PostgreSQL database, not the embedded PGlite)\n',
    );
    expect(existsSync(join(dir, 'empty'))).toBe(false); // nothing generated, not even the data directory
  }, 60_000);

  (url ? it : it.skip)(
    'with a look-alike variable (DATABSE_URL) or an unknown one with our prefix',
    async () => {
      const exit = await startMain({ ...productionEnv({ reference: true }), DATABSE_URL: url!, AUTH_JWKS_PATH: '/x' });
      expect(exit.code).toBe(1);
      expect(exit.stdout).toBe('');
      expect(exit.stderr).toBe(
        "Invalid configuration for production (NODE_ENV=production): AUTH_JWKS_PATH is not a setting (AUTH_ is this service's prefix; see the README's Settings); " +
          'DATABSE_URL is not a setting (did you mean DATABASE_URL?)\n',
      );
    },
    60_000,
  );

  (url ? it : it.skip)(
    'on empty reference tables, naming `cli reference import`; loading no demo data; starts once the CLI loaded them',
    async () => {
      const env = productionEnv({ reference: false });
      const exit = await startMain(env);
      expect(exit.code).toBe(1);
      expect(exit.stderr).toBe(
        'Refusing to start in production (NODE_ENV=production): the reference tables hold no legal entity; load them with `cli reference import <file>` (or REFERENCE_DATA_FILE)\n',
      );
      expectJsonLines(exit.stdout);
      expect(existsSync(join(dir, 'dev'))).toBe(false);

      // The operator's way: `cli reference import` works in production on the empty store, then the server starts.
      const lines = legacyImportLines(parseReferenceData(referenceData(), 'fixture'), 'fixture');
      const ndjson = join(dir, 'reference.ndjson');
      await writeFile(ndjson, lines.map((line) => JSON.stringify({ kind: line.kind, record: JSON.parse(line.json) as object })).join('\n') + '\n');
      const imported = await runToExit('src/cli/main.ts', ['reference', 'import', ndjson], env);
      expect(imported).toMatchObject({ code: 0 });
      // LOG_LEVEL=info: production's "listening on" is a log line, not a banner.
      const server = await startServerProcess({ ...env, LOG_LEVEL: 'info' });
      servers.push(server);
      expect((await fetch(`${server.url}/health/ready`)).status).toBe(200);
      await server.kill('SIGTERM');
    },
    120_000,
  );
});

(url ? describe : describe.skip)('NODE_ENV=production configured completely', () => {
  it('starts, writes only JSON lines to stdout and never a token, generates no key; the CLI mints none', async () => {
    const env = { ...productionEnv({ reference: true }), LOG_LEVEL: 'info' };
    const server = await startServerProcess(env);
    servers.push(server);
    const ready = await fetch(`${server.url}/health/ready`);
    expect(ready.status).toBe(200);
    const authorized = await fetch(`${server.url}/api/jobs/00000000-0000-0000-0000-000000000000`, { headers: { authorization: `Bearer ${files.token}` } });
    expect(authorized.status).toBe(404); // the configured JWKS verified the token

    const token = await runToExit('src/cli/main.ts', ['token'], env);
    expect(token.code).toBe(3);
    expect(token.stderr).toBe('token: production mode (NODE_ENV=production) mints no access tokens; they come from your identity provider\n');
    expect(token.stdout).toBe('');
    await writeFile(join(dir, 'payload.json'), '{}');
    const sign = await runToExit('src/cli/main.ts', ['sign', join(dir, 'payload.json')], env);
    expect(sign).toEqual({
      code: 3,
      stdout: '',
      stderr: 'sign: production mode (NODE_ENV=production) has no development signer; sign with a qualified signature\n',
    });
    const status = await runToExit('src/cli/main.ts', ['status'], env);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^device_dispenses: checkpoint/m);

    await server.kill('SIGTERM');
    const lines = expectJsonLines(server.stdout());
    expect(lines.find((line) => line.msg === `listening on ${server.url}`)).toMatchObject({ production: true, event_store: 'postgres' });
    expect(lines.some((line) => /development/.test(line.msg))).toBe(false);
    expect(server.output()).not.toMatch(JWT);
    expect(server.output()).not.toMatch(/demo access token|demo signer/);
    expect(existsSync(join(dir, 'dev'))).toBe(false); // no development key, signer or anchor key
  }, 120_000);
});

describe('development mode', () => {
  it('warns once that it is development, once per look-alike; the banner and token go to stderr', async () => {
    const dataDir = join(dir, 'development');
    const server = await startServerProcess({ NODE_ENV: 'development', DATA_DIR: dataDir, LOG_LEVEL: 'warn', DATABSE_URL: 'postgres://x@y/z' });
    servers.push(server);
    await server.kill('SIGTERM');
    const lines = expectJsonLines(server.stdout());
    const development = lines.filter((line) => /^development mode/.test(line.msg));
    expect(development).toHaveLength(1);
    expect(development[0]).toMatchObject({
      level: 40,
      mode: 'development',
      node_env: 'development',
      loaded: ['demo reference data', `embedded PGlite (${dataDir})`],
    });
    expect(development[0]!.generated).toEqual(
      expect.arrayContaining([expect.stringMatching(/^access-token signing key/), expect.stringMatching(/^anchor signing key/)]),
    );
    expect(lines.filter((line) => /^ignored environment variable: DATABSE_URL is not a setting \(did you mean DATABASE_URL\?\)$/.test(line.msg))).toHaveLength(
      1,
    );
    expect(server.stdout()).not.toMatch(JWT);
    expect(server.output()).toMatch(/demo access token[^\n]*\n\s+eyJ/); // on stderr
  }, 120_000);
});
