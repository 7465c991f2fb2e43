/**
 * npm run bench -- read-side [EVENTS ...] — the read side against the database's own scan rate, on the
 * PostgreSQL server (DATABASE_URL), in one run per size: a generated history is imported, then a raw
 * ordered COPY scan of the log (the ceiling), export, the rebuild of each projection and of all, and
 * verify. Each phase runs in its own process; it prints events/s, the ratio to the raw scan and the
 * phase's peak RSS. Default sizes: 200,000 and 1,000,000 events.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { v4 as uuidv4 } from 'uuid';
import { writeHistory } from './readSideHistory.js';

const run = promisify(execFile);
type Result = { phase: string; events: number; seconds: number; peakRssMb: number };

async function phase(name: string, env: NodeJS.ProcessEnv, file: string): Promise<Result> {
  const { stdout } = await run(process.execPath, ['node_modules/tsx/dist/cli.mjs', 'bench/readSidePhase.ts', name, file], { env, maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Result;
}

export async function readSideBench(sizes: number[]) {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('the read-side benchmark runs on the PostgreSQL server: set DATABASE_URL');
  const dir = await mkdtemp(join(tmpdir(), 'bench-read-'));
  const perEvent: Array<{ size: number; rebuildAll: number }> = [];
  try {
    for (const size of sizes) {
      const schema = `bench_${uuidv4().replace(/-/g, '').slice(0, 12)}`;
      const env = { ...process.env, DATABASE_URL: url, DATABASE_SCHEMA: schema, LOG_LEVEL: 'warn', DATA_DIR: dir };
      const file = join(dir, `history-${size}.ndjson`);
      const events = await writeHistory(file, size);
      const results: Result[] = [];
      try {
        for (const name of [
          'import',
          'copy-in',
          'raw-scan',
          'export',
          'rebuild:device_dispenses',
          'rebuild:licenses',
          'rebuild:status_change_events',
          'rebuild:all',
          'verify',
        ])
          results.push(await phase(name, env, file));
      } finally {
        const admin = new pg.Client({ connectionString: url });
        await admin.connect();
        await admin.query(`drop schema if exists ${schema} cascade`);
        await admin.end();
        await rm(file, { force: true });
      }
      const raw = results.find((r) => r.phase === 'raw-scan')!;
      const rawRate = raw.events / raw.seconds;
      process.stdout.write(
        `\nread side, PostgreSQL server, ${events.toLocaleString('en')} events (${raw.events === events ? 'all' : `${raw.events}`} in the log)\n`,
      );
      process.stdout.write(`${'phase'.padEnd(30)} ${'events/s'.padStart(10)} ${'× raw scan'.padStart(11)} ${'peak RSS'.padStart(9)}\n`);
      for (const r of results) {
        const rate = events / r.seconds; // every phase covers the whole history
        process.stdout.write(
          `${r.phase.padEnd(30)} ${rate.toFixed(0).padStart(10)} ${(rate / rawRate).toFixed(2).padStart(11)} ${`${r.peakRssMb} MB`.padStart(9)}\n`,
        );
      }
      perEvent.push({ size: events, rebuildAll: results.find((r) => r.phase === 'rebuild:all')!.seconds / events });
    }
    if (perEvent.length > 1) {
      const [small, large] = [perEvent[0]!, perEvent[perEvent.length - 1]!];
      process.stdout.write(
        `\nrebuild all, time per event at ${large.size} ÷ at ${small.size}: ${(large.rebuildAll / small.rebuildAll).toFixed(2)} (1.00 = linear)\n`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
