/**
 * A database dumped (pg_dump) from a live server and restored into a freshly initialised cluster keeps
 * the old cluster's transaction ids, above the new cluster's counter. Here it is done for real: a server
 * of ours fills a schema on the PostgreSQL server (its counter first moved well past the new cluster's),
 * the schema is dumped while the server runs and restored into a private cluster (initdb on another
 * port). There the raw log is first shown hidden (the bug), then the CLI and a server (which repair it
 * at open) must give: the same export, verify and verify --history clean with the same counts, the
 * audit API in the old order, new appends and a new anchor after the restored history.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { openPostgres } from '../../src/database/database.js';
import { findLogFromTheFuture, RESTAMPED_TRANSACTION_ID } from '../../src/eventStore/logOrderRepair.js';
import { READ_ALL_SQL } from '../../src/eventStore/postgresEventStore.js';
import { basedOn, dispensesPath } from '../deviceDispenses/helpers.js';
import { runCli } from '../support/cli.js';
import { dropSchema, freshSchemaName, reportSkipped } from '../support/databases.js';
import { startPrivateCluster, type PrivateCluster } from '../support/faults.js';
import { createBody } from '../support/fixtures.js';
import { startServerProcess, writeServerFiles, type ServerProcess } from '../support/serverProcess.js';
import { burnTransactionIdsTo } from '../support/transactionCounter.js';
import { newId } from '../support/testServer.js';

const run = promisify(execFile);
const CREATES = 4;
/** How far the source's counter is put past the new cluster's: more than the restore and our runs there use. */
const XID_LEAD = 5_000n;
const installed = (tool: string) =>
  run(tool, ['--version']).then(
    () => true,
    () => false,
  );
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type AuditPage = { data: { events: Array<{ position: string; event_type: string; metadata: { event_id: string } }> } };

/** Creates a dispense through the API and waits for its job to be processed (303). */
async function createDispense(server: ServerProcess, token: string, deviceRequest: string): Promise<void> {
  const res = await fetch(`${server.url}${dispensesPath()}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(createBody(newId(), basedOn(deviceRequest))),
  });
  expect(res.status).toBe(202);
  const job = new URL(((await res.json()) as { data: { links: Array<{ href: string }> } }).data.links[0]!.href, server.url).pathname;
  for (const deadline = Date.now() + 20_000; ; await sleep(50)) {
    const polled = await fetch(`${server.url}${job}`, { headers: { authorization: `Bearer ${token}` }, redirect: 'manual' });
    if (polled.status === 303) return;
    const body = (await polled.json()) as { data?: { status?: string } };
    if (polled.status !== 200 || body.data?.status !== 'pending' || Date.now() > deadline)
      throw new Error(`job ${job}: ${polled.status} ${JSON.stringify(body)}`);
  }
}

async function auditLog(server: ServerProcess, token: string): Promise<AuditPage['data']['events']> {
  const res = await fetch(`${server.url}/api/audit/events?limit=1000`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as AuditPage).data.events;
}

const eventIds = (ndjson: string) =>
  ndjson
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { metadata: { event_id: string } }).metadata.event_id);

describe('a database dumped from a live server and restored into a freshly initialised cluster', () => {
  const sourceUrl = process.env.DATABASE_URL;
  let cluster: PrivateCluster | null = null;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    if (!sourceUrl) return reportSkipped('restored database (pg_dump into a new cluster): needs DATABASE_URL, a PostgreSQL server to dump from');
    for (const tool of ['pg_dump', 'pg_restore'])
      if (!(await installed(tool))) return reportSkipped(`restored database (pg_dump into a new cluster): no ${tool} on the PATH`);
    const started = await startPrivateCluster();
    if (typeof started === 'string') return reportSkipped(`restored database (pg_dump into a new cluster): ${started}`);
    cluster = started;
  }, 60_000);

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await cluster?.destroy();
  }, 60_000);

  it('keeps its whole history in order: export, verify, verify --history, the audit API, new appends and anchors after it', async () => {
    if (!cluster || !sourceUrl) return;
    const dir = await mkdtemp(join(tmpdir(), 'esoz-restore-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const files = await writeServerFiles(dir, CREATES + 1);
    const schema = freshSchemaName();
    cleanups.push(() => dropSchema(schema));
    const sourceEnv = { ...files.env, DATABASE_URL: sourceUrl, DATABASE_SCHEMA: schema, AUDIT_ANCHOR_INTERVAL_SECONDS: '86400' };
    const targetEnv = { ...sourceEnv, DATABASE_URL: cluster.url };

    // The source's counter well past the new cluster's, so the dump carries ids from its future.
    const target = new pg.Client({ connectionString: cluster.url });
    await target.connect();
    const targetCounter = BigInt((await target.query<{ xid: string }>('select pg_current_xact_id()::text as xid')).rows[0]!.xid);
    await target.end();
    const source = await openPostgres(sourceUrl, { schema, max: 2 });
    cleanups.push(() => source.close());
    await burnTransactionIdsTo(source, targetCounter + XID_LEAD, 0n);

    // A live server fills the log (concurrent creates) and an anchor signs it; the dump is taken while it runs.
    const server = await startServerProcess(sourceEnv);
    cleanups.push(() => server.kill());
    await Promise.all(files.requests.slice(0, CREATES).map((request) => createDispense(server, files.token, request)));
    expect((await runCli(['anchor'], sourceEnv)).stdout).toBe('wrote 1 anchor(s)\n');
    const dump = join(dir, 'registry.dump');
    await run('pg_dump', ['--dbname', sourceUrl, '--schema', schema, '--format', 'custom', '--file', dump]);
    await server.kill('SIGTERM');
    const sourceExport = join(dir, 'source.ndjson');
    expect((await runCli(['export', '--out', sourceExport], sourceEnv)).code).toBe(0);
    const sourceHistory = await runCli(['verify', '--history'], sourceEnv);
    expect(sourceHistory.code).toBe(0);
    const events = eventIds(await readFile(sourceExport, 'utf8'));
    expect(events.length).toBeGreaterThanOrEqual(CREATES * 2 + 1);
    expect(sourceHistory.stdout).toMatch(
      new RegExp(`^history intact: ${events.length} event\\(s\\) in \\d+ stream\\(s\\), 1 anchor\\(s\\) \\(signatures checked\\)`),
    );

    await run('pg_restore', ['--dbname', cluster.url, '--no-owner', '--exit-on-error', dump]);

    // The bug as the restore leaves it: every event stored, none in the global log, ids beyond the counter.
    const restored = await openPostgres(cluster.url, { schema, max: 2 });
    cleanups.push(() => restored.close());
    expect((await restored.pool.query<{ n: string }>('select count(*) as n from es_events')).rows[0]!.n).toBe(String(events.length));
    expect((await restored.pool.query(READ_ALL_SQL, ['0', '0', 1000])).rows).toEqual([]);
    const future = await findLogFromTheFuture(restored.pool);
    expect(future).not.toBeNull();
    expect(future!.newestTransactionId).toBeGreaterThan(future!.clusterNextTransactionId);

    // The first open there (the CLI's) repairs it and says so on stderr; the export is the source's, byte for byte.
    const targetExport = join(dir, 'target.ndjson');
    const exported = await runCli(['export', '--out', targetExport], targetEnv);
    expect(exported.code).toBe(0);
    expect(exported.stderr).toContain(`log order repair: the event log holds transaction ids this PostgreSQL cluster has not reached`);
    expect(exported.stderr).toContain(`re-stamped the order of ${events.length} event(s) below the cluster's horizon, no event changed`);
    expect(exported.stderr).toContain(`exported ${events.length} event(s)\n`);
    expect(await readFile(targetExport, 'utf8')).toBe(await readFile(sourceExport, 'utf8'));
    expect(await findLogFromTheFuture(restored.pool)).toBeNull();

    // The read models equal a replay up to their checkpoints, which moved with the log.
    const verified = await runCli(['verify'], targetEnv);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(
      new RegExp(`^device_dispenses: ${CREATES} record\\(s\\) up to ${RESTAMPED_TRANSACTION_ID}:\\d+: equal to a fresh replay$`, 'm'),
    );
    for (const line of verified.stdout.trim().split('\n')) expect(line).toMatch(/: equal to a fresh replay$/);
    const history = await runCli(['verify', '--history'], targetEnv);
    expect([history.code, history.stdout]).toEqual([0, sourceHistory.stdout]);

    // The audit API: the old order, positions below the new cluster's horizon; a new dispense lands after it.
    const restarted = await startServerProcess(targetEnv);
    cleanups.push(() => restarted.kill());
    const before = await auditLog(restarted, files.token);
    expect(before.map((e) => e.metadata.event_id)).toEqual(events);
    expect(before.map((e) => e.position)).toEqual(events.map((_, i) => `${RESTAMPED_TRANSACTION_ID}:${i + 1}`));
    await createDispense(restarted, files.token, files.requests[CREATES]!);
    let after = await auditLog(restarted, files.token);
    for (const deadline = Date.now() + 10_000; after.length === events.length && Date.now() < deadline; await sleep(50))
      after = await auditLog(restarted, files.token);
    expect(after.slice(0, events.length)).toEqual(before);
    expect(after.length).toBeGreaterThan(events.length);
    expect(after.slice(events.length).map((e) => e.event_type)).toContain('DeviceDispenseCreated');
    for (const event of after.slice(events.length)) expect(BigInt(event.position.split(':')[0]!)).toBeGreaterThan(RESTAMPED_TRANSACTION_ID);
    await restarted.kill('SIGTERM');

    // The anchorer's stored position moved with the log: a new anchor covers the new events, and all verifies.
    expect((await runCli(['anchor'], targetEnv)).stdout).toBe('wrote 1 anchor(s)\n');
    const reanchored = await runCli(['verify', '--history'], targetEnv);
    expect(reanchored.code).toBe(0);
    expect(reanchored.stdout).toMatch(
      new RegExp(
        `^history intact: ${after.length + 1} event\\(s\\) in \\d+ stream\\(s\\), 2 anchor\\(s\\) \\(signatures checked\\); the last anchor covers ${after.length} of ${after.length + 1}`,
      ),
    );
    expect((await runCli(['verify'], targetEnv)).code).toBe(0);
  }, 110_000);
});
