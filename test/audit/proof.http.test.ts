/**
 * The auditor's workflow (issue 16) on a real server: GET …/proof of one dispense, checked by the
 * README's script (examples/verify-proof.mjs) with the anchor key; the same scopes as the other audit
 * reads; then with the server stopped: export → offline `verify --export` → `verify --history`.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import request from 'supertest';
import { runCli } from '../support/cli.js';
import { ids } from '../support/fixtures.js';
import { createThenStop } from '../support/misClient.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';

function runScript(args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['examples/verify-proof.mjs', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

describe.each(testBackends())('stream proof and the auditor workflow on %s', (backend) => {
  let t: TestServer;
  let auth: string;
  const dispenseId = newId();
  const stream = `device_dispense-${dispenseId}`;
  let keyFile: string;

  beforeAll(async () => {
    // The server's own anchorer, every second once 2 events are pending (the reference licences come first).
    t = await startTestServer({ backend, env: { AUDIT_ANCHOR_EVERY_EVENTS: '2', AUDIT_ANCHOR_INTERVAL_SECONDS: '1' } });
    auth = `Bearer ${await t.token()}`;
    await createThenStop(t, auth, dispenseId, ids.deviceRequest);
    for (let tries = 0; ; tries++) {
      const res = await request(t.app).get(`/api/audit/streams/${stream}/proof`).set('authorization', auth);
      if (res.body.data?.anchor?.leaf.revision === 1) break;
      if (tries > 300) throw new Error('no anchor covers the dispense');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    keyFile = join(t.env.DATA_DIR!, 'dev', 'audit', 'jwks.json');
  }, 120_000);
  afterAll(async () => t.close());

  const proof = (bearer = auth) => request(t.app).get(`/api/audit/streams/${stream}/proof`).set('authorization', bearer);

  it("answers the stream's chain and the latest anchor with the Merkle path of its head", async () => {
    const res = await proof();
    expect(res.status).toBe(200);
    const { data } = res.body;
    expect(data.events.map((e: { event_type: string }) => e.event_type)).toEqual(['DeviceDispenseCreated', 'DeviceDispenseStopped']);
    expect(data.events[0]).toMatchObject({ revision: 0, prev_hash: '0'.repeat(64), hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(data.events[1].prev_hash).toBe(data.events[0].hash);
    expect(data.anchor).toMatchObject({ leaf: { stream, revision: 1, hash: data.events[1].hash }, jws: expect.any(String), path: expect.any(Array) });
    expect(data.unanchored_from).toBeNull();
  });

  it('is checked by examples/verify-proof.mjs, which refuses a changed event and a foreign key', async () => {
    const body = (await proof()).body;
    const file = join(t.env.DATA_DIR!, 'proof.json');
    await writeFile(file, JSON.stringify(body));
    const ok = await runScript([file, keyFile]);
    expect(ok.stdout).toContain(`VERIFIED: ${stream}: revisions 0…1 chained; revision 1 under the anchor of`);
    expect(ok.code).toBe(0);

    body.data.events[0].data.note = 'changed afterwards';
    await writeFile(file, JSON.stringify(body));
    const changed = await runScript([file, keyFile]);
    expect(changed.stdout).toContain(`NOT VERIFIED: ${stream} revision 0`);
    expect(changed.code).toBe(1);

    const { body: original } = await proof();
    await writeFile(file, JSON.stringify(original));
    const otherKey = join(t.env.DATA_DIR!, 'other.jwk.json');
    await writeFile(otherKey, JSON.stringify(t.issuer.jwks));
    const foreign = await runScript([file, otherKey]);
    expect(foreign.stdout).toContain("NOT VERIFIED: the anchor's signature does not verify");
    expect(foreign.code).toBe(1);
  });

  it('has the audit scopes of the other audit reads: another legal entity sees no such stream, no audit scope is 403', async () => {
    // Another legal entity's (the pharmacist is employed there too, so the audit rule decides).
    const other = `Bearer ${await t.token({ client_id: ids.otherLegalEntity, scope: 'audit:read' })}`;
    const hidden = await proof(other);
    expect([hidden.status, hidden.body.error?.message]).toEqual([404, 'Stream not found']);
    const own = `Bearer ${await t.token({ scope: 'audit:read' })}`;
    expect((await proof(own)).status).toBe(200);
    const none = await proof(`Bearer ${await t.token({ scope: 'device_dispense:read' })}`);
    expect(none.status).toBe(403);
    const unknown = await request(t.app).get(`/api/audit/streams/device_dispense-${newId()}/proof`).set('authorization', auth);
    expect(unknown.status).toBe(404);
  });

  it('CLI: export → verify --export (offline, with the key) → verify --history; a changed line is named, exit 1', async () => {
    await t.stop();
    const file = join(t.env.DATA_DIR!, 'history.ndjson');
    expect((await runCli(['export', '--out', file], t.env)).code).toBe(0);
    // Offline: no settings at all, only the file and the public key.
    const offline = await runCli(['verify', '--export', file, '--anchors-key', keyFile], {});
    expect(offline.stdout).toMatch(/^history intact: \d+ event\(s\) in \d+ stream\(s\), [1-9]\d* anchor\(s\) \(signatures checked\)/);
    expect(offline.code).toBe(0);
    const stored = await runCli(['verify', '--history'], t.env);
    expect(stored.stdout).toMatch(/^history intact: .*signatures checked/);
    expect(stored.code).toBe(0);

    const lines = (await readFile(file, 'utf8')).split('\n');
    const at = lines.findIndex((line) => line.includes(`"${stream}"`) && line.includes('"revision":1'));
    const eventId = (JSON.parse(lines[at]!) as { metadata: { event_id: string } }).metadata.event_id;
    lines[at] = lines[at]!.replace('"revision":1', '"revision":1,"extra":0').replace(`"${ids.legalEntity}"`, `"${newId()}"`);
    await writeFile(file, lines.join('\n'));
    const broken = await runCli(['verify', '--export', file], {});
    expect(broken.stdout).toContain(`history BROKEN at line ${at + 1}, stream ${stream}, revision 1, event ${eventId}: its content`);
    expect(broken.code).toBe(1);
  }, 120_000);
});
