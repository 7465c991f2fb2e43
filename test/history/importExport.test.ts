/**
 * Export → import → export: a history moves into an empty store with its event ids, revisions, order
 * and metadata, the read models are rebuilt from it, and the second export is the same file. A bad
 * line is refused with its number and nothing is written; a non-empty store is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';
import { dropSchema, freshSchemaName } from '../support/databases.js';
import { ids } from '../support/fixtures.js';
import { createThenStop } from '../support/misClient.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';

describe.each(testBackends())('history export and import on %s', (backend) => {
  let t: TestServer;
  let dir: string;
  const schemas: string[] = [];
  /** Settings of a new, empty installation beside the test server's. */
  const emptyInstallation = async (name: string) => {
    const dataDir = join(dir, name);
    const schema = backend === 'postgres' ? freshSchemaName() : undefined;
    if (schema) schemas.push(schema);
    return { ...t.env, DATA_DIR: dataDir, ...(schema ? { DATABASE_SCHEMA: schema } : {}) };
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'history-'));
    t = await startTestServer({ backend });
    const auth = `Bearer ${await t.token()}`;
    for (let i = 0; i < 3; i++) {
      const id = newId();
      await createThenStop(t, auth, id, ids.deviceRequest);
    }
    await t.stop();
  }, 120_000);
  afterAll(async () => {
    await t.close();
    for (const schema of schemas) await dropSchema(schema);
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips: import into an empty store, read models rebuilt and verified, the same file exported again', async () => {
    const first = join(dir, 'first.ndjson');
    expect((await runCli(['export', '--out', first], t.env)).code).toBe(0);
    const original = await readFile(first, 'utf8');
    const lines = original.trim().split('\n');
    expect(lines.length).toBeGreaterThan(6);
    expect(JSON.parse(lines[0]!)).toEqual({
      stream_name: expect.any(String),
      revision: 0,
      event_type: expect.any(String),
      data: expect.any(Object),
      metadata: expect.objectContaining({ event_id: expect.any(String), occurred_at: expect.any(String), schema_version: 1 }),
      // The hash chain travels with the file (issue 16); revision 0 links to the genesis hash.
      prev_hash: '0'.repeat(64),
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });

    const target = await emptyInstallation('target');
    const imported = await runCli(['import', first], target);
    expect(imported.stderr).toContain(`imported ${lines.length} event(s)`);
    expect(imported.code).toBe(0);
    const verified = await runCli(['verify'], target);
    expect(verified.stdout).toContain('device_dispenses: 3 record(s)');
    expect(verified.code).toBe(0);

    const second = join(dir, 'second.ndjson');
    expect((await runCli(['export', '--out', second], target)).code).toBe(0);
    expect(await readFile(second, 'utf8')).toBe(original);

    const again = await runCli(['import', first], target);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('import refused, nothing was written: the event store is not empty (import into an empty store, or pass --force)');
  }, 120_000);

  it('the CLI refuses a bad line with its number and writes nothing', async () => {
    const lines = (await readFile(join(dir, 'first.ndjson'), 'utf8')).trim().split('\n');
    const file = join(dir, 'broken.ndjson');
    await writeFile(file, `${lines[0]}\n${lines[1]}\n{broken\n`);
    const target = await emptyInstallation('broken');
    const result = await runCli(['import', file], target);
    expect(result.stderr).toContain('import refused, nothing was written: line 3: not a JSON object');
    expect(result.code).toBe(1);
  }, 120_000);

  it('the CLI refuses an event its schema refuses (exit 1, the line named) and writes nothing', async () => {
    const lines = (await readFile(join(dir, 'first.ndjson'), 'utf8')).trim().split('\n');
    const created = lines.map((l) => JSON.parse(l) as { event_type: string; data: unknown }).findIndex((l) => l.event_type === 'DeviceDispenseCreated');
    const garbage = JSON.stringify({ ...(JSON.parse(lines[created]!) as object), data: { garbage: true } });
    const file = join(dir, 'garbage.ndjson');
    await writeFile(file, [...lines.slice(0, created), garbage, ...lines.slice(created + 1)].join('\n') + '\n');
    const target = await emptyInstallation('garbage');
    const result = await runCli(['import', file], target);
    expect(result.stderr).toContain(
      `import refused, nothing was written: line ${created + 1}: DeviceDispenseCreated: data.dispense: Invalid input: expected object, received undefined\n`,
    );
    expect(result.code).toBe(1);
    const status = await runCli(['status'], target);
    expect(status.stdout).toContain('device_dispenses: checkpoint -, head -, lag 0 event(s)');
  }, 120_000);
});
