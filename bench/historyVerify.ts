/**
 * npm run bench -- history [EVENTS] — what tamper evidence costs on the read side (issue 16): a
 * generated history (bench/readSideHistory.ts) is imported (hash chains computed on the way), signed
 * anchors are written over it, then `verify --history` (the store) and `verify --export` (the exported
 * file, offline) each recompute every chain and anchor. Each phase runs in its own process; it prints
 * events/s and peak RSS, and the load average (the machine is shared). Default: 100,000 events; the
 * PostgreSQL server when DATABASE_URL is set, else PGlite.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { v4 as uuidv4 } from 'uuid';
import { writeHistory } from './readSideHistory.js';

const run = promisify(execFile);
type Result = { phase: string; events: number; anchors?: number; seconds: number; peakRssMb: number };

async function phase(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  const { stdout } = await run(process.execPath, ['node_modules/tsx/dist/cli.mjs', script, ...args], { env, maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Result;
}

const HEAP_CAP_MB = 96;
const load = () =>
  loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');

export async function historyVerifyBench(size: number) {
  const url = process.env.DATABASE_URL;
  const dir = await mkdtemp(join(tmpdir(), 'bench-history-'));
  const schema = `bench_${uuidv4().replace(/-/g, '').slice(0, 12)}`;
  const env = { ...process.env, LOG_LEVEL: 'warn', DATA_DIR: dir, ...(url ? { DATABASE_URL: url, DATABASE_SCHEMA: schema } : {}) };
  const loadBefore = load();
  const results: Result[] = [];
  try {
    const file = join(dir, 'generated.ndjson');
    const exported = join(dir, 'exported.ndjson');
    const events = await writeHistory(file, size);
    results.push(await phase('bench/historyVerifyPhase.ts', ['import', file], env));
    results.push(await phase('bench/historyVerifyPhase.ts', ['anchor'], env));
    // The verifiers run with the V8 heap capped: they must finish in bounded memory (streamed).
    const capped = { ...env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=${HEAP_CAP_MB}`.trim() };
    results.push(await phase('bench/historyVerifyPhase.ts', ['verify-history'], capped));
    results.push(await phase('bench/historyVerifyPhase.ts', ['export', exported], env));
    results.push(await phase('bench/historyVerifyPhase.ts', ['verify-export', exported], capped));
    process.stdout.write(`\ntamper evidence, ${url ? 'PostgreSQL server' : 'PGlite'}, ${events.toLocaleString('en')} generated events\n`);
    process.stdout.write(`${'phase'.padEnd(26)} ${'events'.padStart(9)} ${'anchors'.padStart(8)} ${'events/s'.padStart(10)} ${'peak RSS'.padStart(9)}\n`);
    for (const r of results)
      process.stdout.write(
        `${r.phase.padEnd(26)} ${String(r.events).padStart(9)} ${String(r.anchors ?? '').padStart(8)} ${(r.events / r.seconds).toFixed(0).padStart(10)} ${`${r.peakRssMb} MB`.padStart(9)}\n`,
      );
    process.stdout.write(`verify phases ran with the V8 heap capped at ${HEAP_CAP_MB} MB (peak RSS includes tsx's loader)\n`);
    process.stdout.write(`target: verify ≥ 50,000 events/s; load average before ${loadBefore}, after ${load()} (${cpus().length} cores, shared)\n`);
  } finally {
    if (url) {
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`drop schema if exists ${schema} cascade`);
      await admin.end();
    }
    await rm(dir, { recursive: true, force: true });
  }
}
