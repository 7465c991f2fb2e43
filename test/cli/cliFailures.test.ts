/**
 * Every way the CLI fails maps to its documented exit code (2 usage, 3 configuration, 4 failure, 1 a
 * refused import) with a message of its own, never an unhandled error: a bad option to each command,
 * a missing file, an unwritable output, an unreachable store, a PGlite data directory a running server
 * holds, an over-long history line. And the ways to run it that keep npm's banner off stdout.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runCli } from '../support/cli.js';
import { freshSchemaName } from '../support/databases.js';
import { startTestServer } from '../support/testServer.js';

const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
const UNREACHABLE = { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nothing' };
const runFile = promisify(execFile);

let dir: string;
let history: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'esoz-cli-failures-'));
  history = join(dir, 'empty.ndjson');
  await writeFile(history, '');
  await writeFile(join(dir, 'payload.json'), '{}');
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('a bad option → exit 2, the usage on stderr, nothing on stdout', () => {
  it.each([
    ['export', '--bogus'],
    ['import', '--bogus', 'x.ndjson'],
    ['rebuild', 'all', '--bogus'],
    ['verify', '--bogus'],
    ['verify', '--history', '--bogus'],
    ['verify', '--export', 'x.ndjson', '--bogus'],
    ['anchor', '--bogus'],
    ['status', '--bogus'],
    ['sign', 'x.json', '--bogus'],
    ['token', '--bogus'],
  ])('%s … %s', async (...args) => {
    const result = await runCli(args, { DATA_DIR: join(dir, 'data') });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^Unknown option '--bogus'[^\n]*\nusage: npm run cli -- <command>\n/);
  });

  it.each([
    [['status', 'extra'], "Unexpected argument 'extra'"],
    [['anchor', 'extra'], "Unexpected argument 'extra'"],
    [['rebuild'], 'name a projection, or all'],
    [['rebuild', 'licenses', 'extra'], 'name a projection, or all'],
    [['verify', 'licenses', 'extra'], 'unexpected argument extra'],
    [['export', 'extra'], 'unexpected argument extra'],
    [['sign'], 'name the JSON file to sign'],
  ])('%j → exit 2: %s', async (args, message) => {
    const result = await runCli(args, { DATA_DIR: join(dir, 'data') });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain('usage: npm run cli -- <command>');
  });
});

describe('a missing file, an unwritable output → exit 4 with a message naming it', () => {
  it.each([
    [['import', '/nonexistent/history.ndjson'], 'cannot read the history file /nonexistent/history.ndjson: ENOENT: no such file or directory'],
    [['verify', '--export', '/nonexistent/history.ndjson'], 'cannot read the history file /nonexistent/history.ndjson: ENOENT: no such file or directory'],
    [['sign', '/nonexistent/payload.json'], 'cannot read the payload /nonexistent/payload.json: ENOENT: no such file or directory'],
    [
      ['export', '--out', '/nonexistent/dir/x.ndjson'],
      "cannot write --out /nonexistent/dir/x.ndjson: ENOENT: no such file or directory, open '/nonexistent/dir/x.ndjson'",
    ],
  ])('%j', async (args, message) => {
    const result = await runCli(args, { DATA_DIR: join(dir, 'data') });
    expect(result.code).toBe(4);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringContaining(message)]);
  });

  it('an --out that is a directory → exit 4 (EISDIR)', async () => {
    const result = await runCli(['export', '--out', dir], { DATA_DIR: join(dir, 'data') });
    expect(result.code).toBe(4);
    expect(result.stderr.trim()).toBe(`cannot write --out ${dir}: EISDIR: illegal operation on a directory, open '${dir}'`);
  });
});

describe('an unreachable store → exit 4 naming the store', () => {
  it.each([['export'], ['import', 'HISTORY'], ['rebuild', 'all'], ['verify'], ['verify', '--history'], ['anchor'], ['status']])('%s %s', async (...args) => {
    const result = await runCli(
      args.map((arg) => (arg === 'HISTORY' ? history : arg)),
      { ...UNREACHABLE, DATA_DIR: join(dir, 'data') },
    );
    expect(result.code).toBe(4);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim()).toBe('cannot open the store (postgres): connect ECONNREFUSED 127.0.0.1:1');
  });
});

describe('a PGlite data directory a running server holds', () => {
  it('is refused (exit 4) pointing to the admin API, and opens once the server has stopped', async () => {
    const t = await startTestServer();
    try {
      const pglite = join(t.env.DATA_DIR!, 'pglite');
      expect(JSON.parse(await readFile(join(pglite, 'esoz.lock'), 'utf8'))).toEqual({ pid: process.pid, host: hostname() });
      const refused = await runCli(['status'], t.env);
      expect(refused.code).toBe(4);
      expect(refused.stdout).toBe('');
      expect(refused.stderr.trim()).toBe(
        `cannot open the store: the PGlite data directory ${pglite} is in use by process ${process.pid} on ${hostname()} (a running server or CLI command): ` +
          "stop it first, or do this through the running server's admin API (e.g. POST /api/admin/projections/{name}/rebuild, GET /api/admin/projections); " +
          `if no such process runs, remove ${join(pglite, 'esoz.lock')}`,
      );
      await t.stop();
      const after = await runCli(['status'], t.env);
      expect(after.code).toBe(0);
      expect(after.stdout).toContain('device_dispenses: checkpoint');
      // An output that fails while written (a full disk): exit 4, not a hang or a crash.
      expect((await runCli(['anchor'], t.env)).code).toBe(0);
      const full = await runCli(['export', '--out', '/dev/full'], t.env);
      expect(full.code).toBe(4);
      expect(full.stderr.trim().split('\n').at(-1)).toBe('cannot write --out /dev/full: ENOSPC: no space left on device, write');
    } finally {
      await t.close();
    }
  }, 60_000);

  it('a stale lock (its process is gone) is taken over', async () => {
    const data = join(dir, 'stale');
    await mkdir(join(data, 'pglite'), { recursive: true });
    const gone = spawn(process.execPath, ['-e', '']);
    const pid = gone.pid!;
    await new Promise((resolve) => gone.on('exit', resolve));
    await writeFile(join(data, 'pglite', 'esoz.lock'), JSON.stringify({ pid, host: hostname() }));
    const result = await runCli(['status'], { DATA_DIR: data });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('device_dispenses: checkpoint -');
    // Released when the CLI was done.
    await expect(readFile(join(data, 'pglite', 'esoz.lock'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  }, 60_000);
});

describe('IMPORT_MAX_LINE_BYTES', () => {
  it('a line over the default 8 MiB is refused with its number, exit 1, nothing written', async () => {
    const data = join(dir, 'long-line');
    const file = join(dir, 'long-line.ndjson');
    const exported = join(dir, 'valid.ndjson');
    // A valid first line (a real export of one event), then a 12 MB line.
    const seeded = await startTestServer();
    let firstLine: string;
    try {
      await seeded.stop();
      expect((await runCli(['anchor'], seeded.env)).code).toBe(0);
      expect((await runCli(['export', '--out', exported], seeded.env)).code).toBe(0);
      firstLine = (await readFile(exported, 'utf8')).split('\n')[0]!;
    } finally {
      await seeded.close();
    }
    await writeFile(file, `${firstLine}\n{"stream_name": "${'x'.repeat(12 * 1024 * 1024)}"}\n`);
    // PGlite always; the PostgreSQL server too when DATABASE_URL is set (a fresh schema).
    const targets: Array<Record<string, string>> = [{ DATA_DIR: data }];
    if (process.env.DATABASE_URL) targets.push({ DATA_DIR: data, DATABASE_URL: process.env.DATABASE_URL, DATABASE_SCHEMA: freshSchemaName() });
    for (const target of targets) {
      const refused = await runCli(['import', file], target);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('import refused, nothing was written: line 2: longer than IMPORT_MAX_LINE_BYTES (8388608 bytes)');
      const empty = await runCli(['export'], target);
      expect(empty).toMatchObject({ code: 0, stdout: '' });
    }
  }, 120_000);

  it('a smaller bound refuses a shorter line; a bad value is a configuration error (exit 3)', async () => {
    const file = join(dir, 'short-bound.ndjson');
    await writeFile(file, `${'y'.repeat(2000)}\n`);
    const refused = await runCli(['import', file], { DATA_DIR: join(dir, 'short-bound'), IMPORT_MAX_LINE_BYTES: '1024' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('import refused, nothing was written: line 1: longer than IMPORT_MAX_LINE_BYTES (1024 bytes)');
    const bad = await runCli(['import', file], { DATA_DIR: join(dir, 'short-bound'), IMPORT_MAX_LINE_BYTES: '8mb' });
    expect(bad.code).toBe(3);
    expect(bad.stderr.trim()).toBe('Invalid configuration: IMPORT_MAX_LINE_BYTES must be a number of bytes');
    // verify --export reads files from outside too: the same bound, and no other setting needed.
    const verified = await runCli(['verify', '--export', file], { IMPORT_MAX_LINE_BYTES: '1024' });
    expect(verified).toMatchObject({ code: 1, stdout: 'history refused at line 1: longer than IMPORT_MAX_LINE_BYTES (1024 bytes)\n' });
    const badForVerify = await runCli(['verify', '--export', file], { IMPORT_MAX_LINE_BYTES: '8mb' });
    expect(badForVerify.code).toBe(3);
    expect(badForVerify.stderr.trim()).toBe('Invalid configuration: IMPORT_MAX_LINE_BYTES must be a number of bytes');
  }, 60_000);
});

describe("npm's banner stays off stdout", () => {
  it('npx esoz-cli and npm run --silent cli write the command’s output only', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: join(dir, 'data') };
    delete env.DATABASE_URL;
    const viaBin = await runFile('npx', ['--no-install', 'esoz-cli', '--version'], { env });
    expect(viaBin.stdout).toBe(`${version}\n`);
    const viaSilent = await runFile('npm', ['run', '--silent', 'cli', '--', '--version'], { env });
    expect(viaSilent.stdout).toBe(`${version}\n`);
  }, 60_000);

  it('npm run cli -- export into a file or pipe is refused (exit 2) rather than written after the banner', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: join(dir, 'data') };
    delete env.DATABASE_URL;
    const result = await runFile('npm', ['run', 'cli', '--', 'export'], { env }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      "npm run wrote its banner to stdout before the history: use 'npx esoz-cli export > FILE', 'npm run --silent cli -- export > FILE' or --out FILE",
    );
  }, 60_000);
});
