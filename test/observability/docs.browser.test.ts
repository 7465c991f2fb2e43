/**
 * /docs in a real headless Chromium (Debian's package, driven by playwright-core): Swagger UI renders
 * every documented operation from the server's own assets. Without /usr/bin/chromium it prints a
 * `skipped:` line (.ci/run installs it).
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import { chromium, type Browser } from 'playwright-core';
import { OPERATIONS } from '../../src/http/openapi.js';
import { reportSkipped } from '../support/databases.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);

let t: TestServer | undefined;
let server: Server | undefined;
let browser: Browser | undefined;
beforeAll(async () => {
  if (!available) return reportSkipped(`/docs in headless Chromium: ${CHROMIUM} is not installed`);
  t = await startTestServer();
  server = await new Promise<Server>((resolve) => {
    const listening = t!.app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  await t?.close();
});

it('lists every operation, loading nothing from outside', async () => {
  if (!browser || !server) return;
  const address = server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const page = await browser.newPage();
  const outside: string[] = [];
  page.on('request', (req) => void (req.url().startsWith(base) || req.url().startsWith('data:') || outside.push(req.url())));
  await page.goto(`${base}/docs`);
  await page.waitForSelector('.opblock', { timeout: 30_000 });
  const listed = await page.$$eval('.opblock', (blocks) =>
    blocks.map((block) => {
      const method = block.querySelector('.opblock-summary-method')?.textContent?.trim().toLowerCase() ?? '';
      const path = block.querySelector('.opblock-summary-path')?.getAttribute('data-path') ?? '';
      return `${method} ${path}`;
    }),
  );
  const expected = OPERATIONS.map((op) => `${op.method} ${op.path.replace(/:(\w+)/g, '{$1}')}`);
  expect(listed.sort()).toEqual(expected.sort());
  expect(outside).toEqual([]);
}, 60_000);
