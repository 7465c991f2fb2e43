/**
 * verify: the read models equal a fresh replay after a normal run, and not after a row was tampered
 * with (readable diff, non-zero exit from the CLI); rebuild repairs them.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { READ_MODEL_PROJECTIONS } from '../../src/projections/registry.js';
import { projectionsSettled } from '../support/projectionsSettled.js';
import { describeResult, verifyReadModels } from '../../src/projections/verify.js';
import { runCli } from '../support/cli.js';
import { createBody, ids, ref } from '../support/fixtures.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';

describe.each(testBackends())('verify and rebuild on %s', (backend) => {
  let t: TestServer;
  const [a, b] = [newId(), newId()];
  beforeAll(async () => {
    t = await startTestServer({ backend });
    const auth = `Bearer ${await t.token()}`;
    const base = `/api/patients/${ids.patient}/device_dispenses`;
    for (const [id, request_] of [
      [a, ids.deviceRequest],
      [b, ids.secondRequest],
    ] as const) {
      const accepted = await request(t.app)
        .post(base)
        .set('authorization', auth)
        .send(createBody(id, { based_on: ref('device_request', request_) }));
      await t.waitForJob(accepted.body.data.links[0].href);
    }
    const stopped = await request(t.app).patch(`${base}/${a}/actions/stop`).set('authorization', auth);
    await t.waitForJob(stopped.body.data.links[0].href);
  });
  afterAll(async () => t.close());

  it('passes after a normal run', async () => {
    await projectionsSettled(t);
    const results = await verifyReadModels(t.server.context.stores, READ_MODEL_PROJECTIONS);
    expect(results.map((r) => [r.readModel, r.differences, r.moved])).toEqual([
      ['device_dispenses', [], false],
      ['licenses', [], false],
    ]);
    expect(results[0]!.records).toBe(2);
    expect(describeResult(results[0]!)).toMatch(/device_dispenses: 2 record\(s\) up to .*: equal to a fresh replay/);
  });

  it('fails after a read-model row is tampered with, naming the record and the path', async () => {
    const { database } = t.server.context;
    await database.pool.query(`update device_dispenses set document = jsonb_set(document::jsonb, '{status}', '"completed"')::json where id = $1`, [a]);
    await database.pool.query(`delete from licenses where id = $1`, [ids.primaryLicense]);
    const [dispenses, licenses] = await verifyReadModels(t.server.context.stores, READ_MODEL_PROJECTIONS);
    expect(dispenses!.differences).toEqual([{ id: a, kind: 'different', paths: [{ path: '$.document.status', readModel: 'completed', replay: 'stopped' }] }]);
    expect(licenses!.differences).toEqual([{ id: ids.primaryLicense, kind: 'missing', paths: [] }]);
    expect(describeResult(dispenses!)).toContain(`${a}: differs\n    $.document.status: read model "completed" ≠ replay "stopped"`);
  });

  it('the CLI exits non-zero with the diff, rebuild repairs, and verify then passes', async () => {
    await t.stop(); // one process at a time on the data (PGlite), and no live projection moving under us
    const failing = await runCli(['verify'], t.env);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toContain(`${a}: differs`);
    expect(failing.stdout).toContain(`${ids.primaryLicense}: missing from the read model`);

    const rebuilt = await runCli(['rebuild', 'all'], t.env);
    expect(rebuilt.stderr).toMatch(/rebuild device_dispenses, licenses, status_change_events: \d+ events, \d+ events\/s/);
    expect(rebuilt.code).toBe(0);
    const passing = await runCli(['verify', 'all'], t.env);
    expect(passing.stdout).toMatch(/device_dispenses: 2 record\(s\) .*: equal to a fresh replay/);
    expect(passing.code).toBe(0);
    const status = await runCli(['status'], t.env);
    expect(status.stdout).toMatch(/device_dispenses: checkpoint \S+, head \S+, lag 0 event\(s\)/);
  }, 120_000);
});
