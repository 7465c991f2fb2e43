/** The pieces the command benchmarks share: concurrent drivers, an HTTP client, the forked bench server. */
import { fork, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import type { SqlCounts } from './sqlCounter.js';
import demo from '../src/referenceData/demoReferenceData.json' with { type: 'json' };

export const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);

/** The server's CPU and statements so far; its resident set now and at its peak (bytes). */
export type Sample = { cpu: NodeJS.CpuUsage; sql: SqlCounts; rss: number; maxRss: number };
/** `sqlOps`: the operations `sql` counts (a counting pass of its own over HTTP), when not `ops`. */
export type Row = {
  label: string;
  clients: number;
  ops: number;
  seconds: number;
  latencies: number[];
  sql: SqlCounts;
  sqlOps?: number;
  cpuMs: number;
  sysMs: number;
};

export const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
export const cpuMs = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage) => (b.user - a.user + b.system - a.system) / 1000;
/** The kernel's share (system calls, page faults): expensive on this kind of VM. */
export const sysMs = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage) => (b.system - a.system) / 1000;
export const diff = (a: SqlCounts, b: SqlCounts): SqlCounts => ({
  statements: b.statements - a.statements,
  flushes: b.flushes - a.flushes,
  criticalStatements: b.criticalStatements - a.criticalStatements,
  criticalFlushes: b.criticalFlushes - a.criticalFlushes,
});

/** `count` operations by `clients` concurrent loops; latency of each. */
export async function drive(count: number, clients: number, op: (i: number) => Promise<void>) {
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

/** A tiny keep-alive HTTP client (the MIS side; its CPU is not counted). */
export function httpClient(base: string, token: string) {
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

export type BenchServer = {
  child: ChildProcess;
  url: string;
  token: string;
  adminToken: string;
  sample(): Promise<Sample>;
  counting(on: boolean): Promise<void>;
};
export function startServer(env: NodeJS.ProcessEnv): Promise<BenchServer> {
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
    child.on('message', (message: { type: string; url?: string; token?: string; adminToken?: string } & Sample) => {
      if (message.type === 'ready')
        resolve({
          child,
          url: message.url!,
          token: message.token!,
          adminToken: message.adminToken!,
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

/**
 * One measured line over HTTP: `n` operations by CLIENTS concurrent clients (the server's CPU over them),
 * then a pass of `countN` of its own that tells the critical statements (its CPU is not the line's).
 */
export async function measureOverHttp(
  server: BenchServer,
  label: string,
  { n, countN, first }: { n: number; countN: number; first: number },
  op: (i: number) => Promise<void>,
): Promise<Row> {
  const before = await server.sample();
  const { seconds, latencies } = await drive(n, CLIENTS, (i) => op(first + i));
  const after = await server.sample();
  await server.counting(true);
  const countFrom = await server.sample();
  await drive(countN, CLIENTS, (i) => op(first + n + i));
  const countTo = await server.sample();
  await server.counting(false);
  return {
    label,
    clients: CLIENTS,
    ops: n,
    seconds,
    latencies,
    sql: diff(countFrom.sql, countTo.sql),
    sqlOps: countN,
    cpuMs: cpuMs(before.cpu, after.cpu),
    sysMs: sysMs(before.cpu, after.cpu),
  };
}

type Call = ReturnType<typeof httpClient>;
const ref = (code: string, value: string) => ({ identifier: { type: { coding: [{ system: 'eHealth/resources', code }] }, value } });

/** The job's end, polled like an MIS: each GET waits up to 10 s (Prefer: wait) and is repeated while pending. */
async function jobEnd(call: Call, accepted: Awaited<ReturnType<Call>>) {
  if (accepted.status !== 202) throw new Error(`expected 202, got ${accepted.status}: ${JSON.stringify(accepted.body)}`);
  const href = accepted.body.data!.links![0]!.href;
  for (;;) {
    const job = await call('GET', href, { headers: { prefer: 'wait=10' } });
    if (job.status !== 200) {
      if (job.status !== 303) throw new Error(`job ${href} ended ${job.status}: ${JSON.stringify(job.body)}`);
      return;
    }
  }
}

/** Create (dispense `ids[i]` on device request `requests[i]`, the demo pharmacist's) and Stop over HTTP, each to its job's end. */
export function dispenseCalls(call: Call, requests: readonly string[], ids: readonly string[]) {
  const template = demo.device_requests[0]!;
  const dispensesPath = `/api/patients/${template.subject_id}/device_dispenses`;
  const create = async (i: number) =>
    jobEnd(
      call,
      await call('POST', dispensesPath, {
        body: {
          id: ids[i]!,
          status: 'in_progress',
          primary_source: true,
          performer: ref('employee', demo.employees[0]!.id),
          location: ref('division', demo.divisions[0]!.id),
          based_on: ref('device_request', requests[i]!),
          program: ref('medical_program', template.program_id!),
          verification_code: template.verification_code,
          details: [{ device: ref('device_definition', demo.device_definitions[0]!.id), quantity: { value: 10, system: 'device_unit', code: 'piece' } }],
        },
      }),
    );
  const stop = async (i: number) => jobEnd(call, await call('PATCH', `${dispensesPath}/${ids[i]}/actions/stop`));
  return { create, stop, dispensesPath };
}
