/**
 * npm run bench -- read-side [EVENTS ...] — the read side against the database's own scan rate, on the
 * PostgreSQL server (DATABASE_URL), in one run per size: a generated history is imported (the compiled
 * CLI, as operators run it), then the database's own ceilings (a raw ordered COPY scan of the log, and
 * a COPY of its rows into a table like es_events), export, the rebuild of each projection and of all,
 * and verify. Each phase runs in its own process, after a CHECKPOINT; it prints events/s, the ratio to
 * the raw scan, the phase's peak RSS and its CPU per event (the CLI's, and the whole machine's with the
 * server's), with the rate that CPU would allow on every core. Default sizes: 200,000 and 1,000,000 events.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { v4 as uuidv4 } from 'uuid';
import { writeHistory } from './readSideHistory.js';

const run = promisify(execFile);
/**
 * A phase's CPU: the CLI's own (Node, every thread) and the whole machine's busy time (the CLI, the
 * server's backends and its background writers together), over its process less a start-up's.
 */
type Cpu = { nodeSeconds: number | null; machineSeconds: number };
type Result = { phase: string; events: number; seconds: number; peakRssMb: number | null; cpu: Cpu | null };

const CORES = availableParallelism();

/**
 * Busy CPU seconds of the whole machine so far, every core (/proc/stat: user, nice, system, irq, softirq;
 * not idle, iowait, nor steal, the time the hypervisor ran someone else while this machine waited).
 */
async function machineBusySeconds(): Promise<number> {
  const [, ...ticks] = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).map(Number);
  const [user, nice, system, , , irq, softirq] = ticks as [number, number, number, number, number, number, number];
  return (user + nice + system + irq + softirq) / 100; // USER_HZ: 100 on Linux
}

/** Runs `work`, with the machine's busy CPU seconds it took. */
async function withMachineCpu<T>(work: () => Promise<T>): Promise<[T, number]> {
  const before = await machineBusySeconds();
  const result = await work();
  return [result, (await machineBusySeconds()) - before];
}

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
  const { phase, events, seconds } = JSON.parse(stdout.trim().split('\n').pop()!) as Pick<Result, 'phase' | 'events' | 'seconds'>;
  // No CPU figures: this process's own start-up (tsx compiling the script) would be most of them.
  return { phase, events, seconds, peakRssMb: null, cpu: null };
}

/** The compiled CLI with `args`: its stderr (with reportUsage's lines) and the machine's CPU seconds meanwhile. */
async function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<[string, number]> {
  const [{ stderr }, machineSeconds] = await withMachineCpu(() =>
    run(process.execPath, [...CLI_NODE_OPTIONS, '--import', './bench/reportUsage.mjs', 'dist/cli/main.js', ...args], { env, maxBuffer: 1 << 24 }),
  );
  return [stderr, machineSeconds];
}

/** What a CLI process costs without a phase's work (`status`: start-up, migrations checked, a few reads): about 1 s of CPU. */
async function startUpCpu(env: NodeJS.ProcessEnv): Promise<Cpu> {
  const [stderr, machineSeconds] = await runCli(['status'], env);
  return { nodeSeconds: Number(/@@cpu-s ([\d.]+)/.exec(stderr)![1]), machineSeconds };
}

/**
 * One operator command, exactly as operators run it (the compiled CLI, README's heap bound), in its own
 * process: its time is the one it reports for the work (`<label>: N events, R events/s in S s`).
 */
async function cli(name: string, label: string, args: string[], env: NodeJS.ProcessEnv, { cpu = true } = {}): Promise<Result> {
  await settle(env.DATABASE_URL!);
  const [stderr, machineSeconds] = await runCli(args, env);
  // The last such line: a run without a total prints the same line every 5 s while it works.
  const done = [...stderr.matchAll(new RegExp(`^${label}: ([\\d,]+) events, [\\d,]+ events/s in ([\\d.]+) s$`, 'gm'))].pop();
  const rss = /@@peak-rss-mb (\d+)/.exec(stderr);
  const nodeCpu = /@@cpu-s ([\d.]+)/.exec(stderr);
  if (!done || !rss || !nodeCpu) throw new Error(`${name}: unexpected output\n${stderr}`);
  return {
    phase: name,
    events: Number(done[1]!.replace(/,/g, '')),
    seconds: Number(done[2]),
    peakRssMb: Number(rss[1]),
    cpu: cpu ? { nodeSeconds: Number(nodeCpu[1]), machineSeconds } : null,
  };
}

export async function readSideBench(sizes: number[]) {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('the read-side benchmark runs on the PostgreSQL server: set DATABASE_URL');
  await run('npm', ['run', 'build'], { maxBuffer: 1 << 24 }); // the CLI is measured compiled, as operators run it
  const dir = await mkdtemp(join(tmpdir(), 'bench-read-'));
  // Seconds per event of each phase, per size: the growth from the smallest size to the largest.
  const perEvent: Array<{ size: number; seconds: Map<string, number>; cpu: Map<string, number> }> = [];
  try {
    for (const size of sizes) {
      const schema = `bench_${uuidv4().replace(/-/g, '').slice(0, 12)}`;
      const env = { ...process.env, DATABASE_URL: url, DATABASE_SCHEMA: schema, LOG_LEVEL: 'warn', DATA_DIR: dir };
      const file = join(dir, `history-${size}.ndjson`);
      const events = await writeHistory(file, size);
      const results: Result[] = [];
      try {
        // import also rebuilds the read models (its second line); the first line is the load itself.
        results.push(await cli('import', 'import', ['import', file], env, { cpu: false }));
        results.push(await ceiling('copy-in', env));
        results.push(await ceiling('raw-scan', env));
        results.push(await cli('export', 'export', ['export', '--out', '/dev/null'], env));
        for (const projection of ['device_dispenses', 'licenses', 'status_change_events'])
          results.push(await cli(`rebuild ${projection}`, `rebuild ${projection}`, ['rebuild', projection], env));
        results.push(await cli('rebuild all', 'rebuild device_dispenses, licenses, status_change_events', ['rebuild', 'all'], env));
        results.push(await cli('verify', 'verify \\(replaying\\)', ['verify'], env));
        // Each phase's CPU less a start-up's.
        const startUp = await startUpCpu(env);
        for (const r of results)
          if (r.cpu) r.cpu = { nodeSeconds: r.cpu.nodeSeconds! - startUp.nodeSeconds!, machineSeconds: r.cpu.machineSeconds - startUp.machineSeconds };
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
      // CPU µs per event, Node's and the machine's; and the rate the machine's CPU allows on every core at once.
      process.stdout.write(
        `${'phase'.padEnd(30)} ${'events/s'.padStart(10)} ${'× raw scan'.padStart(11)} ${'peak RSS'.padStart(9)} ${'Node µs/ev'.padStart(11)} ${'all µs/ev'.padStart(10)} ${`CPU cap ${CORES} cores`.padStart(18)}\n`,
      );
      for (const r of results) {
        const rate = events / r.seconds; // every phase covers the whole history (a projection reads only its streams)
        const rss = r.peakRssMb === null ? '—' : `${r.peakRssMb} MB`;
        const micros = (seconds: number | null | undefined) => (seconds == null ? '—' : ((seconds * 1e6) / events).toFixed(0));
        const cap = r.cpu ? ((CORES * events) / r.cpu.machineSeconds).toFixed(0) : '—';
        process.stdout.write(
          `${r.phase.padEnd(30)} ${rate.toFixed(0).padStart(10)} ${(rate / rawRate).toFixed(2).padStart(11)} ${rss.padStart(9)} ${micros(r.cpu?.nodeSeconds).padStart(11)} ${micros(r.cpu?.machineSeconds).padStart(10)} ${cap.padStart(18)}\n`,
        );
      }
      process.stdout.write(
        `(CPU: each phase's process less a start-up's; none for import, whose process also rebuilds, nor for the ceilings. The cap: the rate at which the phase's CPU fills every core)\n`,
      );
      const [imported, copyIn] = [results.find((r) => r.phase === 'import')!, results.find((r) => r.phase === 'copy-in')!];
      process.stdout.write(`import ÷ the database's own copy of the same rows (copy-in): ${(copyIn.seconds / imported.seconds).toFixed(2)}\n`);
      perEvent.push({
        size: events,
        seconds: new Map(results.map((r) => [r.phase, r.seconds / events])),
        cpu: new Map(results.flatMap((r) => (r.cpu ? [[r.phase, r.cpu.machineSeconds / events] as const] : []))),
      });
    }
    if (perEvent.length > 1) {
      const [small, large] = [perEvent[0]!, perEvent[perEvent.length - 1]!];
      // The machine's CPU per event as well: wall time on a shared machine moves with its neighbours, CPU less so.
      process.stdout.write(`\nper event at ${large.size} ÷ at ${small.size} (1.00 = linear; issue 12 asks ≤ 1.2)\n`);
      process.stdout.write(`${'phase'.padEnd(30)} ${'time'.padStart(10)} ${'all CPU'.padStart(10)}\n`);
      for (const [phase, seconds] of large.seconds) {
        const [cpuLarge, cpuSmall] = [large.cpu.get(phase), small.cpu.get(phase)];
        const cpu = cpuLarge !== undefined && cpuSmall !== undefined ? (cpuLarge / cpuSmall).toFixed(2) : '—';
        process.stdout.write(`${phase.padEnd(30)} ${(seconds / small.seconds.get(phase)!).toFixed(2).padStart(10)} ${cpu.padStart(10)}\n`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
