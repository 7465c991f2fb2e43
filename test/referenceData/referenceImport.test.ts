/**
 * `cli reference import` (PGlite with the server stopped, and the PostgreSQL server beside a serving
 * server): all or nothing, a bad line named, the version rules, --replace, the change log; and on the
 * server, a change made by one instance (or the CLI) used by another instance's next command.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import request from 'supertest';
import { runCli } from '../support/cli.js';
import { reportSkipped } from '../support/databases.js';
import { ids, referenceData } from '../support/fixtures.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import { basedOn, deviceRequestPool, dispenseApi, expectJobForbidden, expectJobUnprocessable, expectProcessed } from '../deviceDispenses/helpers.js';
import { createBody } from '../support/fixtures.js';

const person = (id: string, version = 1, status = 'active') => ({ id, version, status, verification_status: 'VERIFIED' });
const line = (kind: string, record: object) => JSON.stringify({ kind, record });

describe.each(testBackends())('cli reference import on %s', (backend) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ backend });
    // PGlite: one process owns the data directory, so the CLI runs with the server stopped.
    if (backend === 'pglite') await t.stop();
  });
  afterAll(async () => t?.close());

  const file = async (name: string, lines: string[]) => {
    const path = join(t.env.DATA_DIR!, name);
    await writeFile(path, `${lines.join('\n')}\n`);
    return path;
  };

  it('loads a file, skips older versions, refuses a bad line and a conflicting version with nothing written, and --replace removes the rest', async () => {
    const [a, b, c] = [newId(), newId(), newId()];
    const first = await runCli(['reference', 'import', await file('1.ndjson', [line('persons', person(a)), line('persons', person(b, 2))])], t.env);
    expect(first.stderr).not.toMatch(/refused/);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ lines: 2, written: 2, skipped_older: 0, unchanged: 0 });

    // Line 3 is bad: nothing of the file (not even line 1's new person) is written.
    const bad = await runCli(
      ['reference', 'import', await file('2.ndjson', [line('persons', person(c)), '', line('persons', { id: 'x', version: 1, status: 3 })])],
      t.env,
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^reference import refused, nothing was written: line 3: record\.status: /m);
    const conflicting = await runCli(
      ['reference', 'import', await file('3.ndjson', [line('persons', person(c)), line('persons', person(b, 2, 'inactive'))])],
      t.env,
    );
    expect(conflicting.code).toBe(1);
    expect(conflicting.stderr).toContain(`line 2: version: ${b}: version 2 is stored with different content`);
    const unknown = await runCli(['reference', 'import', await file('4.ndjson', [line('people', person(c))])], t.env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/line 1: kind: must be one of legal_entities, /);

    const older = await runCli(['reference', 'import', await file('5.ndjson', [line('persons', person(b, 1, 'inactive')), line('persons', person(c))])], t.env);
    expect(older.code).toBe(0);
    expect(JSON.parse(older.stdout)).toMatchObject({ lines: 2, written: 1, skipped_older: 1 });

    // The fixture's persons and a, b, c are stored; a snapshot of only b and c removes the others.
    const replaced = await runCli(
      ['reference', 'import', '--replace', 'persons', await file('6.ndjson', [line('persons', person(b, 2)), line('persons', person(c))])],
      t.env,
    );
    expect(replaced.code).toBe(0);
    const outcome = JSON.parse(replaced.stdout) as { removed: number; removed_ids: string[]; unchanged: number };
    expect(outcome.unchanged).toBe(2);
    expect(outcome.removed_ids).toEqual(expect.arrayContaining([a, ids.patient, ids.inactivePatient]));
    expect(outcome.removed).toBe(outcome.removed_ids.length);

    const usage = await runCli(['reference', 'import', '--replace', 'people', 'x.ndjson'], t.env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--replace: unknown kind people');
  });
});

const onServer = process.env.DATABASE_URL ? describe : describe.skip;
if (!process.env.DATABASE_URL) reportSkipped('reference changes seen by a second instance: no PostgreSQL at DATABASE_URL');

onServer('reference changes seen by another instance on one PostgreSQL database', () => {
  const data = referenceData();
  const fresh = deviceRequestPool(data, 4);
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    a = await startTestServer({ data, backend: 'postgres' });
    b = await startTestServer({ data, backend: 'postgres', env: { DATABASE_SCHEMA: a.env.DATABASE_SCHEMA! } });
  }, 120_000);
  afterAll(async () => {
    await b?.stop();
    await a?.close();
  });

  it('an employee dismissed through instance A is refused on instance B within a second; a device request loaded by the CLI is dispensable on both', async () => {
    const [apiA, apiB] = [dispenseApi(a), dispenseApi(b)];
    const dispense = await apiB.createInProgress(fresh());
    // B has read (and cached) the employee; A dismisses it.
    const employee = data.employees.find((e) => e.id === ids.employee)!;
    const put = await request(a.app)
      .put(`/api/admin/reference/employees/${ids.employee}`)
      .set('authorization', `Bearer ${await a.token()}`)
      .send({ ...employee, version: 2, status: 'DISMISSED', is_active: false });
    expect(put.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expectJobForbidden(await apiB.action(dispense.id, 'stop'), 'User is not an active employee of the legal entity');

    await request(a.app)
      .put(`/api/admin/reference/employees/${ids.employee}`)
      .set('authorization', `Bearer ${await a.token()}`)
      .send({ ...employee, version: 3 });
    const requestId = newId();
    // Asked for before it exists: both instances keep "not found" until the change log names it.
    expectJobUnprocessable(await apiB.create(createBody(newId(), basedOn(requestId))), 'Device request not found', '$.based_on.identifier.value');
    const template = data.device_requests.find((r) => r.id === ids.deviceRequest)!;
    const path = join(a.env.DATA_DIR!, 'requests.ndjson');
    await writeFile(path, `${line('device_requests', { ...template, id: requestId })}\n`);
    const loaded = await runCli(['reference', 'import', path], a.env);
    expect(loaded.code).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const id = newId();
    expectProcessed(await apiB.create(createBody(id, basedOn(requestId))), id);
    expectProcessed(await apiA.action(id, 'stop'), id);
  });
});
