/**
 * npm run bench — the command path side by side with Emmett's PostgreSQL event store, on one database
 * in one run (only the ratios mean something; the machine is shared):
 *   1. Emmett (`@event-driven-io/emmett-postgresql`) bare appendToStream, one event to a new stream
 *   2. our event store's bare append, the same
 *   3. Create device dispense over HTTP: POST → 202 → GET /api/jobs/{id} (`Prefer: wait`) until it ends
 *   4. Stop over HTTP, the same, on the dispenses created in 3
 *   5. one client: Stop accepted → job processed → GET shows the dispense stopped (latency)
 * 1–4 with CLIENTS (16) concurrent clients. The server runs in its own process (bench/server.ts) with
 * its SQL statements counted (those sent inside an HTTP request are the critical path: for 3 and 4 in
 * a pass of COUNT_N operations of their own, as telling them costs CPU) and its CPU time; the appends
 * run in this process, measured the same way. Ends with `verify` of the read models.
 * BENCH_N (default 2000) operations per measurement; needs DATABASE_URL (a PostgreSQL server).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import pg from 'pg';
import { v4 as uuidv4 } from 'uuid';
import { benchEvent } from './benchEvent.js';
import { openPostgres } from '../src/database/database.js';
import { createPostgresEventStore } from '../src/eventStore/postgresEventStore.js';
import demo from '../src/referenceData/demoReferenceData.json' with { type: 'json' };
import { countSql } from './sqlCounter.js';
import { CLIENTS, cpuMs, diff, dispenseCalls, drive, httpClient, measureOverHttp, percentile, startServer, sysMs, type Row } from './harness.js';

const N = Number(process.env.BENCH_N ?? 2000);
const LATENCY_N = 200;
/** Operations of the passes that count critical statements (with the request context on: see bench/server.ts). */
const COUNT_N = Math.max(200, Math.round(N / 10));
/**
 * Operations before each measured line, at the line's concurrency: the JIT kept compiling the hot
 * paths for about 10 s of load (with 50, a fifth of the first HTTP line's CPU was TurboFan compiling),
 * and a running server is measured in its steady state.
 */
const WARM_UP = Number(process.env.BENCH_WARM_UP ?? 2000);
const url = process.env.DATABASE_URL;

async function measureInProcess(label: string, sql: ReturnType<typeof countSql>, op: (i: number) => Promise<void>): Promise<Row> {
  await drive(WARM_UP, CLIENTS, (i) => op(-1 - i));
  const [cpu0, sql0] = [process.cpuUsage(), sql.read()];
  const { seconds, latencies } = await drive(N, CLIENTS, op);
  const counts = diff(sql0, sql.read());
  // In process there is no request: the whole append is its critical path.
  return {
    label,
    clients: CLIENTS,
    ops: N,
    seconds,
    latencies,
    sql: { ...counts, criticalStatements: counts.statements, criticalFlushes: counts.flushes },
    ...((cpu1) => ({ cpuMs: cpuMs(cpu0, cpu1), sysMs: sysMs(cpu0, cpu1) }))(process.cpuUsage()),
  };
}

async function main() {
  if (!url) {
    process.stderr.write('npm run bench needs DATABASE_URL (a PostgreSQL server): Emmett runs on PostgreSQL only\n');
    process.exit(2);
  }
  const sql = countSql();
  const schema = `bench_${uuidv4().slice(0, 8)}`;
  const emmettSchema = `${schema}_emmett`;
  const dir = await mkdtemp(join(tmpdir(), 'bench-'));
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`create schema ${schema}; create schema ${emmettSchema}`);
  const rows: Row[] = [];
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  let verifyOutput = '';
  try {
    const data = { i: 0, note: 'x'.repeat(200) };
    // 1. Emmett, bare append (its own pool, in its own schema of the same database).
    const emmett = getPostgreSQLEventStore(`${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${emmettSchema}`)}`);
    rows.push(
      await measureInProcess('Emmett appendToStream (1 event)', sql, (i) =>
        emmett.appendToStream(`bench-${i}`, [{ type: 'BenchEvent', data: { ...data, i } }]).then(() => undefined),
      ),
    );
    await emmett.close();

    // 2. Ours, bare append.
    const database = await openPostgres(url, { schema });
    const store = await createPostgresEventStore(database);
    const event = (i: number) => benchEvent({ ...data, i });
    rows.push(
      await measureInProcess('our append (1 event)', sql, (i) =>
        store.appendToStream(`bench-${i}`, [event(i)], { expectedRevision: 'no_stream' }).then(() => undefined),
      ),
    );
    await database.close();

    // 3–5. The server in its own process, on the same schema; one device request per Create.
    const total = WARM_UP + N + COUNT_N + LATENCY_N;
    const template = demo.device_requests[0]!;
    const requests = Array.from({ length: total }, () => ({ ...template, id: uuidv4() }));
    const referenceFile = join(dir, 'reference.json');
    await writeFile(referenceFile, JSON.stringify({ ...demo, device_requests: requests }));
    const env = {
      ...process.env,
      DATABASE_URL: url,
      DATABASE_SCHEMA: schema,
      DATA_DIR: dir,
      REFERENCE_DATA_FILE: referenceFile,
      PORT: '0',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
    };
    server = await startServer(env);
    const call = httpClient(server.url, server.token);
    const ids = requests.map(() => uuidv4());
    const { create, stop, dispensesPath } = dispenseCalls(
      call,
      requests.map((r) => r.id),
      ids,
    );

    const overHttp = async (label: string, first: number, op: (i: number) => Promise<void>) =>
      rows.push(await measureOverHttp(server!, label, { n: N, countN: COUNT_N, first }, op));
    await drive(WARM_UP, CLIENTS, (i) => create(i).then(() => stop(i)));
    await overHttp('Create over HTTP (202 → job → 303)', WARM_UP, create);
    await overHttp('Stop over HTTP (202 → job → 303)', WARM_UP, stop);

    // 5. One client: the latency from sending Stop to seeing the dispense stopped.
    for (let i = 0; i < LATENCY_N; i++) await create(WARM_UP + N + COUNT_N + i);
    // Counted as it runs (the request context on): this line's CPU includes the context's.
    await server.counting(true);
    const before = await server.sample();
    const { seconds, latencies } = await drive(LATENCY_N, 1, async (i) => {
      const id = WARM_UP + N + COUNT_N + i;
      await stop(id);
      const shown = await call('GET', `${dispensesPath}/${ids[id]}`);
      if (shown.body.data?.status !== 'stopped')
        throw new Error(`dispense ${ids[id]} not shown stopped after its job: ${JSON.stringify(shown.body.data?.status)}`);
    });
    const after = await server.sample();
    rows.push({
      label: 'Stop, 1 client: accepted → visible',
      clients: 1,
      ops: LATENCY_N,
      seconds,
      latencies,
      sql: diff(before.sql, after.sql),
      cpuMs: cpuMs(before.cpu, after.cpu),
      sysMs: sysMs(before.cpu, after.cpu),
    });

    const stopped = server;
    server = null;
    await new Promise<void>((resolve) => {
      stopped.child.removeAllListeners('exit');
      stopped.child.on('exit', () => resolve());
      stopped.child.send({ type: 'stop' });
    });
    // The read models after all of it must equal a fresh replay of the log.
    const verified = await promisify(execFile)('npx', ['tsx', 'src/cli/main.ts', 'verify'], { env }).then(
      ({ stdout, stderr }) => `clean (${(stdout + stderr).trim().split('\n').pop()})`,
      (error: { code?: number; stdout?: string }) => `FAILED (exit ${error.code}): ${(error.stdout ?? '').split('\n').slice(0, 30).join('\n')}`,
    );
    verifyOutput = verified;
  } finally {
    if (server) server.child.kill('SIGKILL');
    // BENCH_KEEP=1 keeps the bench's schemas (to look into a failed verify).
    if (!process.env.BENCH_KEEP)
      await admin.query(`drop schema if exists ${schema} cascade; drop schema if exists ${emmettSchema} cascade`).catch(() => undefined);
    else process.stdout.write(`kept schemas ${schema} and ${emmettSchema}\n`);
    await admin.end();
    await rm(dir, { recursive: true, force: true });
  }

  const emmett = rows[0]!;
  const rate = (r: Row) => r.ops / r.seconds;
  const header = [
    'operation',
    'clients',
    'ops/s',
    '× Emmett',
    'p50 ms',
    'p99 ms',
    'SQL/op',
    'critical SQL/op',
    'WAL flushes/op (critical)',
    'CPU ms/op',
    'of it sys',
    '× Emmett',
  ];
  const table = rows.map((r) => [
    r.label,
    String(r.clients),
    rate(r).toFixed(0),
    r === emmett || r.clients === 1 ? '' : (rate(r) / rate(emmett)).toFixed(2),
    percentile(r.latencies, 50).toFixed(1),
    percentile(r.latencies, 99).toFixed(1),
    (r.sql.statements / (r.sqlOps ?? r.ops)).toFixed(1),
    (r.sql.criticalStatements / (r.sqlOps ?? r.ops)).toFixed(1),
    `${(r.sql.flushes / (r.sqlOps ?? r.ops)).toFixed(1)} (${(r.sql.criticalFlushes / (r.sqlOps ?? r.ops)).toFixed(1)})`,
    (r.cpuMs / r.ops).toFixed(2),
    (r.sysMs / r.ops).toFixed(2),
    r === emmett ? '' : (r.cpuMs / r.ops / (emmett.cpuMs / emmett.ops)).toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |\n`;
  process.stdout.write(
    `\nPostgreSQL server, ${N} operations per line, ${CLIENTS} clients; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n\n`,
  );
  process.stdout.write(line(header));
  process.stdout.write(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
  for (const row of table) process.stdout.write(line(row));
  process.stdout.write(
    `\nCPU: Emmett and our append: this process; over HTTP: the server process (its own CPU, the clients' not counted), 16-client lines without the request context that tells critical statements (counted in a pass of ${COUNT_N} operations of their own).\nread models after the bench: ${verifyOutput}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
