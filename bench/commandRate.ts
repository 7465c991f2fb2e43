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
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
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
import { countSql, type SqlCounts } from './sqlCounter.js';

const N = Number(process.env.BENCH_N ?? 2000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
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

type Sample = { cpu: NodeJS.CpuUsage; sql: SqlCounts };
/** `sqlOps`: the operations `sql` counts (a counting pass of its own over HTTP), when not `ops`. */
type Row = { label: string; clients: number; ops: number; seconds: number; latencies: number[]; sql: SqlCounts; sqlOps?: number; cpuMs: number; sysMs: number };

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const cpuMs = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage) => (b.user - a.user + b.system - a.system) / 1000;
/** The kernel's share (system calls, page faults): expensive on this kind of VM. */
const sysMs = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage) => (b.system - a.system) / 1000;
const diff = (a: SqlCounts, b: SqlCounts): SqlCounts => ({
  statements: b.statements - a.statements,
  flushes: b.flushes - a.flushes,
  criticalStatements: b.criticalStatements - a.criticalStatements,
  criticalFlushes: b.criticalFlushes - a.criticalFlushes,
});

/** `count` operations by `clients` concurrent loops; latency of each. */
async function drive(count: number, clients: number, op: (i: number) => Promise<void>) {
  let next = 0;
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < count) {
        const i = next++;
        const t0 = performance.now();
        await op(i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, latencies: latencies.sort((a, b) => a - b) };
}

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

/** A tiny keep-alive HTTP client (the MIS side; its CPU is not counted). */
function httpClient(base: string, token: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS * 2 });
  return (method: string, path: string, { body, headers = {} }: { body?: object; headers?: Record<string, string> } = {}) =>
    new Promise<{ status: number; body: { data?: Record<string, unknown> & { links?: Array<{ href: string }> } } }>((resolve, reject) => {
      const payload = body ? JSON.stringify(body) : undefined;
      const req = request(
        `${base}${path}`,
        {
          method,
          agent,
          headers: {
            authorization: `Bearer ${token}`,
            ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
            ...headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
}

type BenchServer = { child: ChildProcess; url: string; token: string; sample(): Promise<Sample>; counting(on: boolean): Promise<void> };
function startServer(env: NodeJS.ProcessEnv): Promise<BenchServer> {
  // BENCH_CPU_PROFILE=<dir>: V8 CPU profiles of the server process, one per phase (bench/server.ts), to find the costs.
  const child = fork(join(import.meta.dirname, 'server.ts'), [], {
    env,
    execArgv: [
      '--import',
      'tsx',
      ...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []),
      ...(process.env.BENCH_PERF ? ['--perf-basic-prof'] : []),
    ],
    // BENCH_SERVER_LOG=<file>: keep the server's log lines.
    stdio: ['ignore', process.env.BENCH_SERVER_LOG ? openSync(process.env.BENCH_SERVER_LOG, 'w') : 'ignore', 'inherit', 'ipc'],
  });
  const waiting = new Map<string, (message: Sample) => void>();
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
    child.on('message', (message: { type: string; url?: string; token?: string } & Sample) => {
      if (message.type === 'ready')
        resolve({
          child,
          url: message.url!,
          token: message.token!,
          sample: () =>
            new Promise((done) => {
              waiting.set('sample', done);
              child.send({ type: 'sample' });
            }),
          counting: (on) =>
            new Promise((done) => {
              waiting.set('counting', () => done());
              child.send({ type: 'counting', on });
            }),
        });
      if (message.type === 'sample' || message.type === 'counting') waiting.get(message.type)?.(message);
    });
  });
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
    const dispensesPath = `/api/patients/${template.subject_id}/device_dispenses`;
    const ref = (code: string, value: string) => ({ identifier: { type: { coding: [{ system: 'eHealth/resources', code }] }, value } });
    const employee = demo.employees[0]!;
    const ids = requests.map(() => uuidv4());
    /** The job's end, polled like an MIS: each GET waits up to 10 s (Prefer: wait) and is repeated while pending. */
    const jobEnd = async (accepted: Awaited<ReturnType<typeof call>>) => {
      if (accepted.status !== 202) throw new Error(`expected 202, got ${accepted.status}: ${JSON.stringify(accepted.body)}`);
      const href = accepted.body.data!.links![0]!.href;
      for (;;) {
        const job = await call('GET', href, { headers: { prefer: 'wait=10' } });
        if (job.status !== 200) {
          if (job.status !== 303) throw new Error(`job ${href} ended ${job.status}: ${JSON.stringify(job.body)}`);
          return;
        }
      }
    };
    const create = async (i: number) =>
      jobEnd(
        await call('POST', dispensesPath, {
          body: {
            id: ids[i]!,
            status: 'in_progress',
            primary_source: true,
            performer: ref('employee', employee.id),
            location: ref('division', demo.divisions[0]!.id),
            based_on: ref('device_request', requests[i]!.id),
            program: ref('medical_program', template.program_id!),
            verification_code: template.verification_code!,
            details: [{ device: ref('device_definition', demo.device_definitions[0]!.id), quantity: { value: 10, system: 'device_unit', code: 'piece' } }],
          },
        }),
      );
    const stop = async (i: number) => jobEnd(await call('PATCH', `${dispensesPath}/${ids[i]}/actions/stop`));

    const overHttp = async (label: string, first: number, op: (i: number) => Promise<void>) => {
      const before = await server!.sample();
      const { seconds, latencies } = await drive(N, CLIENTS, (i) => op(first + i));
      const after = await server!.sample();
      // The critical statements, counted in a pass of their own (its CPU is not the row's).
      await server!.counting(true);
      const countFrom = await server!.sample();
      await drive(COUNT_N, CLIENTS, (i) => op(first + N + i));
      const countTo = await server!.sample();
      await server!.counting(false);
      rows.push({
        label,
        clients: CLIENTS,
        ops: N,
        seconds,
        latencies,
        sql: diff(countFrom.sql, countTo.sql),
        sqlOps: COUNT_N,
        cpuMs: cpuMs(before.cpu, after.cpu),
        sysMs: sysMs(before.cpu, after.cpu),
      });
    };
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
