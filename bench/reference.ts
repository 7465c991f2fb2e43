/**
 * npm run bench -- reference: reference data at the size of the country, on the PostgreSQL server
 * (DATABASE_URL), in one run:
 *   1. generates national-shaped data (BENCH_REFERENCE_SCALE × 1M persons, 1M device requests, 100k
 *      parties/users/employees, 20k legal entities, 50k divisions, 5k device definitions) as the
 *      NDJSON `cli reference import` reads, and the same rows as COPY input;
 *   2. loads them (the import path, in process) and, alternating with it, a raw COPY of the same rows
 *      straight into tables with the same indexes (BENCH_IMPORT_ROUNDS rounds, fresh schemas each);
 *   3. the command benchmark's Create and Stop over HTTP on a server whose store holds that data and on
 *      one that holds the demo data, BENCH_RUNS (5) interleaved runs each: server CPU per operation,
 *      critical SQL statements per operation, start-up time, peak RSS; medians compared;
 *   4. two server processes on the national schema: 100 PUTs of an employee on one, each timed until
 *      the other's next request on that employee's behalf sees it (p50/p99).
 * BENCH_N (1000) operations per line, BENCH_WARM_UP (1000) before them.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { v4 as uuidv4 } from 'uuid';
import { openPostgres } from '../src/database/database.js';
import { createPostgresReferenceStore, recordDigest } from '../src/referenceData/postgresReferenceStore.js';
import { demoReferenceFile } from '../src/referenceData/openReferenceData.js';
import { legacyImportLines } from '../src/referenceData/referenceData.js';
import { readImportLines } from '../src/referenceData/referenceImport.js';
import { REFERENCE_SCHEMAS, type ReferenceKind, type ReferenceRecord } from '../src/referenceData/records.js';
import demo from '../src/referenceData/demoReferenceData.json' with { type: 'json' };
import { dispenseCalls, drive, httpClient, measureOverHttp, percentile, startServer, type BenchServer, type Row } from './harness.js';

const url = process.env.DATABASE_URL;
const SCALE = Number(process.env.BENCH_REFERENCE_SCALE ?? 1);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const IMPORT_ROUNDS = Number(process.env.BENCH_IMPORT_ROUNDS ?? 3);
const N = Number(process.env.BENCH_N ?? 1000);
const WARM_UP = Number(process.env.BENCH_WARM_UP ?? 1000);
const COUNT_N = Math.max(200, Math.round(N / 10));
const CHANGES = Number(process.env.BENCH_CHANGES ?? 100);
const PER_RUN = WARM_UP + N + COUNT_N;

const SIZES: Array<[ReferenceKind, number]> = [
  ['legal_entities', 20_000],
  ['parties', 100_000],
  ['users', 100_000],
  ['employees', 100_000],
  ['divisions', 50_000],
  ['persons', 1_000_000],
  ['device_definitions', 5_000],
  ['device_requests', 1_000_000],
].map(([kind, n]) => [kind as ReferenceKind, Math.max(1, Math.round((n as number) * SCALE))]);

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

/** Writes with back-pressure; resolves when written. */
async function write(out: WriteStream, text: string) {
  if (!out.write(text)) await once(out, 'drain');
}

const RAW_CSV = `(format csv, quote e'\\x01', delimiter e'\\x02')`;

/** A record of `kind` number `i`: the fields the checks read, sized as ЕСОЗ's are. */
function generated(kind: ReferenceKind, i: number, idsOf: (kind: ReferenceKind, i: number) => string): ReferenceRecord {
  const id = idsOf(kind, i);
  const leOf = (n: number) => idsOf('legal_entities', n % SIZES[0]![1]);
  switch (kind) {
    case 'legal_entities':
      return { id, version: 1, type: 'PHARMACY', status: 'ACTIVE', name: `Аптека «Здоров'я» №${i}`, edrpou: String(10_000_000 + i) };
    case 'parties':
      return { id, version: 1, tax_id: String(2_000_000_000 + i), first_name: 'Олена', last_name: `Коваленко-${i}`, second_name: 'Петрівна' };
    case 'users':
      return { id, version: 1, party_id: idsOf('parties', i) };
    case 'employees':
      return { id, version: 1, party_id: idsOf('parties', i), legal_entity_id: leOf(i), status: 'APPROVED', is_active: true, employee_type: 'PHARMACIST' };
    case 'divisions':
      return { id, version: 1, legal_entity_id: leOf(i), status: 'ACTIVE', name: `Аптечний пункт №${i}`, dls_verified: true };
    case 'persons':
      return { id, version: 1, status: 'active', verification_status: 'VERIFIED' };
    case 'device_definitions':
      return { id, version: 1, is_active: true, classification_type: String(30_000 + (i % 500)), packaging_unit: 'piece', packaging_count: 1 };
    case 'device_requests':
      return {
        id,
        version: 1,
        subject_id: idsOf('persons', i % SIZES[5]![1]),
        intent: 'order',
        status: 'active',
        dispense_valid_to: '2099-12-31',
        program_id: demo.medical_programs[0]!.id,
        code: { device_definition_id: idsOf('device_definitions', i % SIZES[6]![1]) },
        quantity: { value: 10, code: 'piece' },
        verification_code: String(1000 + (i % 9000)),
      } as ReferenceRecord;
    default:
      throw new Error(`no generator for ${kind}`);
  }
}

/** The national file (NDJSON) and, per kind, the same rows as COPY input; returns the line count. */
async function generate(dir: string): Promise<number> {
  const ids = new Map(SIZES.map(([kind, n]) => [kind, Array.from({ length: n }, () => uuidv4())]));
  const idsOf = (kind: ReferenceKind, i: number) => ids.get(kind)![i]!;
  const ndjson = createWriteStream(join(dir, 'national.ndjson'));
  let lines = 0;
  for (const line of legacyImportLines(demoReferenceFile(), 'demo')) {
    await write(ndjson, `${JSON.stringify({ kind: line.kind, record: JSON.parse(line.json) as unknown })}\n`);
    lines += 1;
  }
  for (const [kind, n] of SIZES) {
    const raw = createWriteStream(join(dir, `raw-${kind}.copy`));
    for (let i = 0; i < n; i++) {
      const record = REFERENCE_SCHEMAS[kind].parse(generated(kind, i, idsOf)) as ReferenceRecord;
      const json = JSON.stringify(record);
      await write(ndjson, `{"kind":"${kind}","record":${json}}\n`);
      await write(raw, `${(record as { id: string }).id}\x02${record.version}\x02${recordDigest(record)}\x02${json}\n`);
      lines += 1;
    }
    raw.end();
    await once(raw, 'finish');
  }
  ndjson.end();
  await once(ndjson, 'finish');
  return lines;
}

/** The bench's device requests (one per Create, every run's), in both schemas. */
function benchRequests(count: number) {
  const template = demo.device_requests[0]!;
  return Array.from({ length: count }, () => ({ ...template, id: uuidv4(), version: 1 }));
}

async function withSchema<T>(schema: string, work: (database: Awaited<ReturnType<typeof openPostgres>>) => Promise<T>): Promise<T> {
  const database = await openPostgres(url!, { schema });
  try {
    return await work(database);
  } finally {
    await database.close();
  }
}

async function importInto(schema: string, file: string): Promise<{ seconds: number; lines: number }> {
  return withSchema(schema, async (database) => {
    const store = await createPostgresReferenceStore(database);
    const started = performance.now();
    const outcome = await store.importLines(() => readImportLines(createReadStream(file, { highWaterMark: 1 << 20 })), { actor: 'bench' });
    return { seconds: (performance.now() - started) / 1000, lines: outcome.lines };
  });
}

async function rawCopyInto(schema: string, dir: string): Promise<{ seconds: number; rows: number }> {
  return withSchema(schema, async (database) => {
    await createPostgresReferenceStore(database);
    const client = await database.pool.connect();
    try {
      const started = performance.now();
      await client.query('begin');
      for (const [kind] of SIZES)
        await pipeline(
          createReadStream(join(dir, `raw-${kind}.copy`), { highWaterMark: 1 << 20 }),
          client.query(copyFrom(`copy ref_${kind} (id, version, digest, record) from stdin with ${RAW_CSV}`)),
        );
      await client.query('commit');
      return { seconds: (performance.now() - started) / 1000, rows: SIZES.reduce((n, [, size]) => n + size, 0) };
    } finally {
      client.release();
    }
  });
}

async function loadLines(schema: string, lines: string[]) {
  await withSchema(schema, async (database) => {
    const store = await createPostgresReferenceStore(database);
    await store.importLines(() => readImportLines(Readable.from([lines.join('\n')])), { actor: 'bench' });
  });
}

type Run = { data: 'demo' | 'national'; startUpMs: number; maxRss: number; create: Row; stop: Row };

async function stopServer(server: BenchServer) {
  await new Promise<void>((resolve) => {
    server.child.removeAllListeners('exit');
    server.child.on('exit', () => resolve());
    server.child.send({ type: 'stop' });
  });
}

async function serverOn(schema: string, dir: string) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: url,
    DATABASE_SCHEMA: schema,
    DATA_DIR: dir,
    PORT: '0',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  };
  delete env.REFERENCE_DATA_FILE;
  const started = performance.now();
  const server = await startServer(env);
  return { server, startUpMs: performance.now() - started };
}

async function commandRun(data: Run['data'], schema: string, dir: string, requests: string[]): Promise<Run> {
  const { server, startUpMs } = await serverOn(schema, dir);
  try {
    const call = httpClient(server.url, server.token);
    const ids = requests.map(() => uuidv4());
    const { create, stop } = dispenseCalls(call, requests, ids);
    await drive(WARM_UP, 16, (i) => create(i).then(() => stop(i)));
    const createRow = await measureOverHttp(server, `Create (${data})`, { n: N, countN: COUNT_N, first: WARM_UP }, create);
    const stopRow = await measureOverHttp(server, `Stop (${data})`, { n: N, countN: COUNT_N, first: WARM_UP }, stop);
    const { maxRss } = await server.sample();
    return { data, startUpMs, maxRss, create: createRow, stop: stopRow };
  } finally {
    await stopServer(server);
  }
}

/** 100 changes of the demo employee through A, each timed until B's next request on their behalf sees it. */
async function propagation(schema: string, dir: string, request: string): Promise<number[]> {
  const a = await serverOn(schema, dir);
  const b = await serverOn(schema, dir);
  try {
    const [callA, callB] = [httpClient(a.server.url, a.server.adminToken), httpClient(b.server.url, b.server.token)];
    const id = uuidv4();
    const { create, dispensesPath } = dispenseCalls(callB, [request], [id]);
    await create(0);
    const employee = { ...demo.employees[0]!, version: 1 };
    const latencies: number[] = [];
    for (let k = 1; k <= CHANGES; k++) {
      const dismissed = k % 2 === 1;
      const put = await callA('PUT', `/api/admin/reference/employees/${employee.id}`, {
        body: { ...employee, version: 1 + k, status: dismissed ? 'DISMISSED' : 'APPROVED', is_active: !dismissed },
      });
      if (put.status !== 200) throw new Error(`PUT answered ${put.status}: ${JSON.stringify(put.body)}`);
      const acknowledged = performance.now();
      const expected = dismissed ? 403 : 200;
      for (let polls = 0; ; polls++) {
        if ((await callB('GET', `${dispensesPath}/${id}`)).status === expected) break;
        if (polls > 20_000) throw new Error(`change ${k} not seen by the other instance`);
      }
      latencies.push(performance.now() - acknowledged);
    }
    return latencies.sort((x, y) => x - y);
  } finally {
    await stopServer(a.server);
    await stopServer(b.server);
  }
}

async function main() {
  if (!url) {
    process.stderr.write('npm run bench -- reference needs DATABASE_URL (a PostgreSQL server)\n');
    process.exit(2);
  }
  // BENCH_REFERENCE_DIR: generate into (and keep) that directory, e.g. to profile the import alone.
  // The servers run compiled, as in production (the RSS figures would otherwise count tsx's loader).
  await promisify(execFile)('npm', ['run', 'build']);
  process.env.BENCH_DIST = '1';
  const dir = process.env.BENCH_REFERENCE_DIR ?? (await mkdtemp(join(tmpdir(), 'bench-reference-')));
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const base = `bench_ref_${uuidv4().slice(0, 8)}`;
  const schemas: string[] = [];
  const schema = async (name: string) => {
    const full = `${base}_${name}`;
    await admin.query(`create schema ${full}`);
    schemas.push(full);
    return full;
  };
  try {
    const t0 = performance.now();
    const lines = await generate(dir);
    process.stdout.write(`generated ${lines} lines in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    if (process.env.BENCH_GENERATE_ONLY) return;

    // 2. Import and raw COPY, alternating, each into a fresh schema.
    const imports: Array<{ seconds: number; lines: number }> = [];
    const raws: Array<{ seconds: number; rows: number }> = [];
    let national = '';
    for (let round = 0; round < IMPORT_ROUNDS; round++) {
      raws.push(await rawCopyInto(await schema(`raw${round}`), dir));
      const target = await schema(`import${round}`);
      imports.push(await importInto(target, join(dir, 'national.ndjson')));
      national = target;
      process.stdout.write(
        `round ${round + 1}: import ${(imports.at(-1)!.lines / imports.at(-1)!.seconds).toFixed(0)} rows/s, raw COPY ${(raws.at(-1)!.rows / raws.at(-1)!.seconds).toFixed(0)} rows/s\n`,
      );
    }

    // 3. Commands on the national data and on the demo data, interleaved.
    const demoSchema = await schema('demo');
    await loadLines(
      demoSchema,
      legacyImportLines(demoReferenceFile(), 'demo').map((l) => JSON.stringify({ kind: l.kind, record: JSON.parse(l.json) as unknown })),
    );
    const requests = benchRequests(RUNS * PER_RUN + 1);
    const requestLines = requests.map((r) => JSON.stringify({ kind: 'device_requests', record: r }));
    for (const target of [demoSchema, national])
      for (let i = 0; i < requestLines.length; i += 10_000) await loadLines(target, requestLines.slice(i, i + 10_000));
    const runs: Run[] = [];
    for (let r = 0; r < RUNS; r++) {
      const slice = requests.slice(r * PER_RUN, (r + 1) * PER_RUN).map((x) => x.id);
      const order: Array<[Run['data'], string]> = [
        ['demo', demoSchema],
        ['national', national],
      ];
      for (const [data, target] of r % 2 === 0 ? order : order.reverse()) {
        const run = await commandRun(data, target, dir, slice);
        runs.push(run);
        process.stdout.write(
          `run ${r + 1} ${data}: Create ${(run.create.cpuMs / run.create.ops).toFixed(2)} ms CPU/op, Stop ${(run.stop.cpuMs / run.stop.ops).toFixed(2)}, start-up ${run.startUpMs.toFixed(0)} ms, peak RSS ${mb(run.maxRss)} MB\n`,
        );
      }
    }

    // 4. Propagation between two instances.
    const latencies = CHANGES > 0 ? await propagation(national, dir, requests.at(-1)!.id) : [NaN];

    // The report.
    const importRate = median(imports.map((i) => i.lines / i.seconds));
    const rawRate = median(raws.map((r) => r.rows / r.seconds));
    // Each round's ratio too: the two loads of one round ran next to each other.
    const roundRatios = imports.map((i, k) => (i.lines / i.seconds / (raws[k]!.rows / raws[k]!.seconds)).toFixed(2)).join(', ');
    const of = (data: Run['data']) => runs.filter((r) => r.data === data);
    const figure = (data: Run['data'], pick: (r: Run) => number) => median(of(data).map(pick));
    const perOp = (row: Row) => row.cpuMs / row.ops;
    const critical = (row: Row) => row.sql.criticalStatements / (row.sqlOps ?? row.ops);
    const rowsOut: Array<[string, (r: Run) => number, (v: number) => string]> = [
      ['Create: server CPU ms/op', (r) => perOp(r.create), (v) => v.toFixed(3)],
      ['Stop: server CPU ms/op', (r) => perOp(r.stop), (v) => v.toFixed(3)],
      ['Create: critical SQL/op', (r) => critical(r.create), (v) => v.toFixed(2)],
      ['Stop: critical SQL/op', (r) => critical(r.stop), (v) => v.toFixed(2)],
      ['Create: p99 ms', (r) => percentile(r.create.latencies, 99), (v) => v.toFixed(1)],
      ['start-up ms', (r) => r.startUpMs, (v) => v.toFixed(0)],
      ['server peak RSS MB', (r) => r.maxRss, (v) => mb(v)],
    ];
    process.stdout.write(
      `\nReference data, PostgreSQL server, scale ${SCALE}; load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}\n\n| import | rows | rows/s (median of ${IMPORT_ROUNDS}) | raw COPY rows/s | × raw COPY |\n|---|---|---|---|---|\n` +
        `| reference import (validate, stage by COPY, merge, change log) | ${lines} | ${importRate.toFixed(0)} | ${rawRate.toFixed(0)} | ${(importRate / rawRate).toFixed(2)} (rounds: ${roundRatios}) |\n` +
        `\n| medians of ${RUNS} interleaved runs (${N} ops a line) | demo data | national data | national ÷ demo |\n|---|---|---|---|\n`,
    );
    for (const [label, pick, format] of RUNS > 0 ? rowsOut : []) {
      const [d, n] = [figure('demo', pick), figure('national', pick)];
      process.stdout.write(`| ${label} | ${format(d)} | ${format(n)} | ${(n / d).toFixed(2)} |\n`);
    }
    process.stdout.write(
      `\nchange on instance A → seen by instance B's next request (${CHANGES} changes): p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms\n`,
    );
  } finally {
    if (!process.env.BENCH_KEEP) for (const s of schemas) await admin.query(`drop schema if exists ${s} cascade`).catch(() => undefined);
    await admin.end();
    if (!process.env.BENCH_REFERENCE_DIR) await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
