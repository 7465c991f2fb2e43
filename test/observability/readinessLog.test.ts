/**
 * A failing readiness probe logs once per change of state (ready → not ready, not ready → ready),
 * not once per probe: the database (PGlite behind its socket server) is taken away while
 * /health/ready is probed again and again, then given back.
 */
import { afterAll, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import request from 'supertest';
import { servePGlite } from '../../src/database/pglite.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

const lines: Array<{ level: number; msg: string; failing?: string[]; reasons?: Record<string, string> }> = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as (typeof lines)[number]);
      done();
    },
  }),
);
let t: TestServer | undefined;
afterAll(async () => t?.close());

const readinessLines = () => lines.filter((line) => /^(not ready|ready again|readiness check failed)/.test(line.msg));
const probe = async () => (await request(t!.app).get('/health/ready')).status;

it('logs the outage once when it starts and once when it ends, however often the probe fails', async () => {
  const { database, socketServer } = await servePGlite();
  t = await startTestServer({ database, logger });
  for (let i = 0; i < 3; i++) expect(await probe()).toBe(200);
  expect(readinessLines()).toEqual([]);

  await socketServer.stop();
  for (let i = 0; i < 6; i++) expect(await probe()).toBe(503);
  expect(readinessLines()).toHaveLength(1);
  const [down] = readinessLines();
  expect(down).toMatchObject({ level: 40, failing: expect.arrayContaining(['database']) });
  expect(down!.msg).toMatch(/^not ready: .*database/);
  expect(Object.keys(down!.reasons ?? {})).toContain('database');

  await socketServer.start();
  const deadline = Date.now() + 20_000;
  while ((await probe()) !== 200) {
    if (Date.now() > deadline) throw new Error('not ready again 20 s after the database came back');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (let i = 0; i < 3; i++) expect(await probe()).toBe(200);
  expect(readinessLines().map((line) => line.msg)).toEqual([down!.msg, 'ready again']);
  expect(readinessLines()[1]!.level).toBe(30);
  // Nor does the request log write a line per probe (debug only).
  expect(lines.filter((line) => line.msg === 'http request' && line.level >= 30)).toEqual([]);
}, 60_000);
