/**
 * npm run bench -- http: server CPU per request of a small authorized JSON GET, in four frames, each
 * in its own process (its CPU only; the clients run here): bare node:http, bare express, ours
 * (request id, request log, input guard, JSON body reader, token check with the verified-token cache,
 * scope, ЕСОЗ envelope), and ours with the GET answered in front of Express (the lane the job GET
 * takes, app.ts answerFirst). The difference is what the frame costs per request.
 */
import { fork } from 'node:child_process';
import { createServer, Agent, request } from 'node:http';
import express from 'express';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createTokenVerifier } from '../src/auth/accessTokens.js';
import { createHttpApp } from '../src/http/app.js';
import { sendData } from '../src/http/envelope.js';
import { createLogger } from '../src/logger.js';

const N = Number(process.env.BENCH_N ?? 5000);
const CLIENTS = 16;
const body = { status: 'processed', eta: '2026-12-01T00:00:00.000Z', links: [{ entity: 'device_dispense', href: '/api/patients/x/device_dispenses/y' }] };

async function serve(kind: string) {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' };
  const token = await new SignJWT({ sub: 'u', client_id: 'le', scope: 'device_dispense:read' })
    .setProtectedHeader({ alg: 'ES256', kid: 'k' })
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(privateKey);
  let handler: Parameters<typeof createServer>[1];
  if (kind === 'node:http') handler = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: body }));
  else if (kind === 'express') {
    const app = express();
    app.get('/api/jobs/:id', (_req, res) => void res.json({ data: body }));
    handler = app;
  } else
    handler = createHttpApp({
      logger: createLogger('info'),
      verifier: createTokenVerifier({ jwks: { keys: [jwk] } }),
      routes: (router, authorize) => router.get('/api/jobs/:id', authorize(null), (req, res) => sendData(req, res, 200, body)),
      // 'ours, job lane': the same answer from a lane in front of Express (app.ts answerFirst).
      ...(kind === 'ours, job lane'
        ? {
            fastLanes: [
              {
                method: 'GET',
                path: /^\/api\/jobs\/([0-9a-fA-F-]{1,36})$/,
                route: '/api/jobs/:id',
                scope: null,
                answer: async () => ({ code: 200, data: body }),
              },
            ],
          }
        : {}),
    });
  const server = createServer({ keepAliveTimeout: 60_000 }, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  process.on('message', (message: string) => {
    if (message === 'cpu') process.send!({ cpu: process.cpuUsage() });
    if (message === 'stop') process.exit(0);
  });
  process.send!({ port: typeof address === 'object' && address ? address.port : 0, token });
}

async function measure(kind: string) {
  // BENCH_CPU_PROFILE=<dir>: a V8 CPU profile of each server process.
  const profile = process.env.BENCH_CPU_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROFILE] : [];
  const child = fork(import.meta.filename, ['serve', kind], { execArgv: ['--import', 'tsx', ...profile], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const next = () => new Promise<{ port?: number; token?: string; cpu?: NodeJS.CpuUsage }>((resolve) => child.once('message', resolve));
  const { port, token } = await next();
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const get = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/api/jobs/0193d6a4-0000-7000-8000-000000000000', agent, headers: { authorization: `Bearer ${token}` } },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${kind}: ${res.statusCode}`))));
        },
      );
      req.on('error', reject);
      req.end();
    });
  const run = async (count: number) => {
    let left = count;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (left-- > 0) await get();
      }),
    );
  };
  await run(500); // warm-up
  child.send('cpu');
  const before = (await next()).cpu!;
  const started = performance.now();
  await run(N);
  const seconds = (performance.now() - started) / 1000;
  child.send('cpu');
  const after = (await next()).cpu!;
  child.send('stop');
  agent.destroy();
  return { kind, perSecond: N / seconds, cpuUs: (after.user - before.user + after.system - before.system) / N };
}

if (process.argv[2] === 'serve') await serve(process.argv[3]!);
else {
  const rows = [];
  // BENCH_HTTP_FRAMES=ours,express: only those (node:http, the reference, always runs first).
  const frames = process.env.BENCH_HTTP_FRAMES?.split(',') ?? ['express', 'ours', 'ours, job lane'];
  for (const kind of ['node:http', ...frames.filter((f) => f !== 'node:http')]) rows.push(await measure(kind));
  process.stdout.write(
    `\nGET with a JSON answer, ${N} requests, ${CLIENTS} clients, server CPU per request\n\n| frame | requests/s | server CPU µs/request | × node:http |\n|---|---|---|---|\n`,
  );
  for (const r of rows) process.stdout.write(`| ${r.kind} | ${r.perSecond.toFixed(0)} | ${r.cpuUs.toFixed(0)} | ${(r.cpuUs / rows[0]!.cpuUs).toFixed(2)} |\n`);
}
