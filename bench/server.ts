/**
 * The bench's server process (forked by bench/commandRate.ts): the real server on the bench's schema,
 * with every SQL statement counted (those sent while an HTTP request is being handled are the critical
 * path) and its CPU time, reported to the parent over IPC.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import type { createServer as CreateServer } from '../src/server.js';
import { mintToken, tokenAudience } from '../src/auth/devKeys.js';
import { ALL_SCOPES } from '../src/auth/scopes.js';

const SYSTEM_OPERATOR = '00000000-0000-4000-8000-00000000b0b0';
import { countSql } from './sqlCounter.js';

// The request context that tells critical statements costs CPU of its own (on node 20 AsyncLocalStorage
// turns on promise hooks: 0.1-0.3 ms per command measured), so the parent turns it on only for the
// passes that count statements ('counting'), not for those it takes the CPU from. BENCH_NO_ALS=1: never.
const inRequest = process.env.BENCH_NO_ALS ? null : new AsyncLocalStorage<boolean>();
let counting = false;
const sql = countSql(inRequest ? () => inRequest.getStore() === true : undefined);

const config = loadConfig();
// BENCH_DIST=1: the compiled server (dist/, as production runs it; npm run build first). Through tsx,
// the loader's own memory (about 60 MB of RSS measured) would be counted as the server's.
const serverModule = process.env.BENCH_DIST ? '../dist/server.js' : '../src/server.js';
const { createServer } = (await import(serverModule)) as { createServer: typeof CreateServer };
const server = await createServer({ config, logger: createLogger(config.LOG_LEVEL) });
const handle = server.app;
// Every request runs inside the async context that marks its statements as the critical path.
const app = (req: IncomingMessage, res: ServerResponse) => (inRequest && counting ? inRequest.run(true, () => handle(req, res)) : handle(req, res));
const { createServer: createHttpServer } = await import('node:http');
const http = createHttpServer({ keepAliveTimeout: 60_000 }, app);
await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
const address = http.address();
const port = typeof address === 'object' && address ? address.port : 0;

// BENCH_CPU_PROFILE=<dir>: a V8 CPU profile between each two samples (one per measured phase).
const profileDir = process.env.BENCH_CPU_PROFILE;
const profiler = profileDir ? new Session() : null;
let samples = 0;
if (profiler) {
  profiler.connect();
  await profiler.post('Profiler.enable');
}
async function nextProfile() {
  if (!profiler || !profileDir) return;
  if (samples > 0) {
    const { profile } = await profiler.post('Profiler.stop');
    await writeFile(join(profileDir, `phase-${samples}-${samples + 1}.cpuprofile`), JSON.stringify(profile));
  }
  samples += 1;
  await profiler.post('Profiler.start');
}

// BENCH_PERF=<dir>: `perf record` of this process between each two samples, on-CPU only (the V8 profile
// counts the time this process is descheduled inside writev as writev). Needs the parent's BENCH_PERF
// to start this process with --perf-basic-prof, so that JS frames have names.
const perfDir = process.env.BENCH_PERF;
let perf: ChildProcess | null = null;
let perfPhase = 0;
async function nextPerf() {
  if (!perfDir) return;
  const stopped = perf;
  if (stopped && stopped.exitCode === null && stopped.signalCode === null) await new Promise((resolve) => stopped.once('exit', resolve).kill('SIGINT'));
  perfPhase += 1;
  perf = spawn('perf', ['record', '-q', '-F', '999', '-g', '-p', String(process.pid), '-o', join(perfDir, `phase-${perfPhase}-${perfPhase + 1}.perf.data`)], {
    stdio: 'ignore',
  });
  // No perf here (or not allowed): say so once per phase and go on measuring without it.
  const started = perf;
  started.once('error', (error) => {
    process.stderr.write(`BENCH_PERF: ${error.message}\n`);
    if (perf === started) perf = null;
  });
  // perf needs a moment to attach before the phase starts.
  await new Promise((resolve) => setTimeout(resolve, 300));
}

type Message = { type: 'sample' } | { type: 'stop' } | { type: 'counting'; on: boolean };
process.on('message', (message: Message) => {
  if (message.type === 'counting') {
    counting = message.on;
    // Off: no storage enabled, so node turns its promise hooks off again.
    if (!counting) inRequest?.disable();
    process.send!({ type: 'counting' });
  }
  if (message.type === 'sample') {
    const reply = { type: 'sample', cpu: process.cpuUsage(), sql: sql.read(), rss: process.memoryUsage.rss(), maxRss: process.resourceUsage().maxRSS * 1024 };
    void nextProfile()
      .then(nextPerf)
      .then(() => process.send!(reply));
  }
  if (message.type === 'stop') {
    http.closeAllConnections();
    http.close();
    void server.stop().then(() => process.exit(0));
  }
});
// The operator's token too (every scope, reference:write for the reference bench), on the same development key.
const dev = server.dev.token;
const adminToken = dev
  ? await mintToken(dev.privateJwk, {
      sub: SYSTEM_OPERATOR,
      client_id: SYSTEM_OPERATOR,
      scope: ALL_SCOPES.join(' '),
      expiresIn: 3600,
      ...tokenAudience(config, true),
    })
  : '';
process.send!({ type: 'ready', url: `http://127.0.0.1:${port}`, token: dev?.demoToken ?? '', adminToken });
