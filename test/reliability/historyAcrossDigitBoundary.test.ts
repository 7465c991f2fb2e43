/**
 * A whole registry history that crosses a decimal-digit boundary of the transaction counter: the live
 * projections show every dispense, and `export` writes exactly as many lines as the log has events,
 * `rebuild all` and `verify` see all of them, `status` reports no lag.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import request from 'supertest';
import { runCli } from '../support/cli.js';
import { reportSkipped } from '../support/databases.js';
import { dispensesPath } from '../deviceDispenses/helpers.js';
import { ids } from '../support/fixtures.js';
import { createThenStop } from '../support/misClient.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import { burnTransactionIdsTo, currentTransactionId, nextDigitBoundary, XID_BUDGET } from '../support/transactionCounter.js';

describe.each(testBackends())('a history across a digit boundary of the transaction counter on %s', (backend) => {
  let t: TestServer;
  let crosses = true;
  let boundary: bigint;
  const dispenses: string[] = [];

  beforeAll(async () => {
    t = await startTestServer({ backend });
    const { database } = t.server.context;
    boundary = await nextDigitBoundary(database, 400n);
    if (boundary - (await currentTransactionId(database)) > XID_BUDGET) {
      crosses = false;
      reportSkipped(`history digit-boundary crossing on ${backend}: next power of ten (${boundary}) is beyond the test's budget`);
    } else await burnTransactionIdsTo(database, boundary, 60n);

    // Create and stop, over and over on one device request: each cycle is a dozen transactions or so.
    const auth = `Bearer ${await t.token()}`;
    while (dispenses.length < 12 || (crosses && (await currentTransactionId(database)) < boundary + 60n)) {
      const id = newId();
      await createThenStop(t, auth, id, ids.deviceRequest);
      dispenses.push(id);
    }
  }, 180_000);
  afterAll(async () => t.close());

  it('the live projection shows every dispense; export, rebuild, verify and status see every event once', async () => {
    const { database } = t.server.context;
    const { rows } = await database.pool.query<{ n: string; min: string; max: string }>(
      'select count(*) as n, min(transaction_id::text::numeric)::text as min, max(transaction_id::text::numeric)::text as max from es_events',
    );
    if (crosses) {
      expect(BigInt(rows[0]!.min)).toBeLessThan(boundary);
      expect(BigInt(rows[0]!.max)).toBeGreaterThanOrEqual(boundary);
    }
    const auth = `Bearer ${await t.token()}`;
    for (const id of dispenses) {
      const res = await request(t.app).get(`${dispensesPath()}/${id}`).set('authorization', auth);
      expect([res.status, res.body.data?.status]).toEqual([200, 'stopped']);
    }
    // The audit API pages through the same log.
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const res = await request(t.app)
        .get('/api/audit/events')
        .query({ limit: 7, ...(after ? { after } : {}) })
        .set('authorization', auth);
      expect(res.status).toBe(200);
      const page = res.body.data as { events: Array<{ metadata: { event_id: string } }>; checkpoint: string | null };
      if (page.events.length === 0) break;
      seen.push(...page.events.map((e) => e.metadata.event_id));
      after = page.checkpoint;
    }

    await t.stop();
    const out = join(t.env.DATA_DIR!, 'history.ndjson');
    const exported = await runCli(['export', '--out', out], t.env);
    expect(exported.code).toBe(0);
    const lines = (await readFile(out, 'utf8')).trim().split('\n');
    await rm(out);
    expect(lines).toHaveLength(Number(rows[0]!.n));
    const exportedIds = lines.map((line) => (JSON.parse(line) as { metadata: { event_id: string } }).metadata.event_id);
    expect(new Set(exportedIds).size).toBe(lines.length);
    expect(seen).toEqual(exportedIds); // the audit API pages through the same log, in the same order

    const rebuilt = await runCli(['rebuild', 'all'], t.env);
    expect(rebuilt.code).toBe(0);
    const verified = await runCli(['verify'], t.env);
    expect(verified.stdout).toContain(`device_dispenses: ${dispenses.length} record(s)`);
    expect(verified.code).toBe(0);
    const status = await runCli(['status'], t.env);
    for (const name of ['device_dispenses', 'licenses', 'status_change_events'])
      expect(status.stdout).toMatch(new RegExp(`${name}: checkpoint \\S+, head \\S+, lag 0 event\\(s\\)`));
  }, 180_000);
});
