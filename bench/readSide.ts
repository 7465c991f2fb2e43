/**
 * npm run bench -- read-side [EVENTS ...] — the read side against the database's own scan rate, on the
 * PostgreSQL server (DATABASE_URL), in one run per size: a generated history is imported (the compiled
 * CLI, as operators run it), then the database's own ceilings (a raw ordered COPY scan of the log, and
 * a COPY of its rows into a table like es_events), export, the rebuild of each projection and of all,
 * and verify. Each phase runs in its own process, after a CHECKPOINT; it prints events/s, the ratio to
 * the raw scan and the phase's peak RSS. Default sizes: 200,000 and 1,000,000 events.
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
type Result = { phase: string; events: number; seconds: number; peakRssMb: number | null };

/** The heap bound operators run the CLI with (README): V8 otherwise lets garbage pile up to gigabytes. */
export const CLI_NODE_OPTIONS = ['--max-old-space-size=160'];

/**
 * Writes out the dirty buffers the phase before left (CHECKPOINT), so that a phase is not timed
 * while the server flushes an earlier phase's writes. At 1M events, the status_change_events rebuild
 * right after the device_dispenses rebuild: 21.9k and 23.7k events/s, after a checkpoint 26.4k and 26.9k.
 */
async function settle(url: string) {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query('checkpoint');
  } finally {
    await admin.end();
  }
}

/** The database's own ceilings (raw scan, copy-in), measured by a small script of their own. */
async function ceiling(name: string, env: NodeJS.ProcessEnv): Promise<Result> {
  await settle(env.DATABASE_URL!);
  const { stdout } = await run(process.execPath, ['node_modules/tsx/dist/cli.mjs', 'bench/readSidePhase.ts', name], { env, maxBuffer: 1 << 20 });
  return { ...(JSON.parse(stdout.trim().split('\n').pop()!) as Omit<Result, 'peakRssMb'>), peakRssMb: null };
}

/**
 * One operator command, exactly as operators run it (the compiled CLI, README's heap bound), in its own
 * process: its time is the one it reports for the work (`<label>: N events, R events/s in S s`).
 */
async function cli(name: string, label: string, args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  await settle(env.DATABASE_URL!);
  const { stderr } = await run(process.execPath, [...CLI_NODE_OPTIONS, '--import', './bench/reportRss.mjs', 'dist/cli/main.js', ...args], {
    env,
    maxBuffer: 1 << 24,
  });
  // The last such line: a run without a total prints the same line every 5 s while it works.
  const done = [...stderr.matchAll(new RegExp(`^${label}: ([\\d,]+) events, [\\d,]+ events/s in ([\\d.]+) s$`, 'gm'))].pop();
  const rss = /@@peak-rss-mb (\d+)/.exec(stderr);
  if (!done || !rss) throw new Error(`${name}: unexpected output\n${stderr}`);
  return { phase: name, events: Number(done[1]!.replace(/,/g, '')), seconds: Number(done[2]), peakRssMb: Number(rss[1]) };
}

export async function readSideBench(sizes: number[]) {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('the read-side benchmark runs on the PostgreSQL server: set DATABASE_URL');
  await run('npm', ['run', 'build'], { maxBuffer: 1 << 24 }); // the CLI is measured compiled, as operators run it
  const dir = await mkdtemp(join(tmpdir(), 'bench-read-'));
  // Seconds per event of each phase, per size: the growth from the smallest size to the largest.
  const perEvent: Array<{ size: number; seconds: Map<string, number> }> = [];
  try {
    for (const size of sizes) {
      const schema = `bench_${uuidv4().replace(/-/g, '').slice(0, 12)}`;
      const env = { ...process.env, DATABASE_URL: url, DATABASE_SCHEMA: schema, LOG_LEVEL: 'warn', DATA_DIR: dir };
      const file = join(dir, `history-${size}.ndjson`);
      const events = await writeHistory(file, size);
      const results: Result[] = [];
      try {
        // import also rebuilds the read models (its second line); the first line is the load itself.
        results.push(await cli('import', 'import', ['import', file], env));
        results.push(await ceiling('copy-in', env));
        results.push(await ceiling('raw-scan', env));
        results.push(await cli('export', 'export', ['export', '--out', '/dev/null'], env));
        for (const projection of ['device_dispenses', 'licenses', 'status_change_events'])
          results.push(await cli(`rebuild ${projection}`, `rebuild ${projection}`, ['rebuild', projection], env));
        results.push(await cli('rebuild all', 'rebuild device_dispenses, licenses, status_change_events', ['rebuild', 'all'], env));
        results.push(await cli('verify', 'verify \\(replaying\\)', ['verify'], env));
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
        const rate = events / r.seconds; // every phase covers the whole history (a projection reads only its streams)
        const rss = r.peakRssMb === null ? '—' : `${r.peakRssMb} MB`;
        process.stdout.write(`${r.phase.padEnd(30)} ${rate.toFixed(0).padStart(10)} ${(rate / rawRate).toFixed(2).padStart(11)} ${rss.padStart(9)}\n`);
      }
      const [imported, copyIn] = [results.find((r) => r.phase === 'import')!, results.find((r) => r.phase === 'copy-in')!];
      process.stdout.write(`import ÷ the database's own copy of the same rows (copy-in): ${(copyIn.seconds / imported.seconds).toFixed(2)}\n`);
      perEvent.push({ size: events, seconds: new Map(results.map((r) => [r.phase, r.seconds / events])) });
    }
    if (perEvent.length > 1) {
      const [small, large] = [perEvent[0]!, perEvent[perEvent.length - 1]!];
      process.stdout.write(`\ntime per event at ${large.size} ÷ at ${small.size} (1.00 = linear; issue 12 asks ≤ 1.2)\n`);
      for (const [phase, seconds] of large.seconds)
        process.stdout.write(`${phase.padEnd(30)} ${(seconds / small.seconds.get(phase)!).toFixed(2).padStart(10)}\n`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
