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
  // Every violation of the page's Content-Security-Policy, as the browser reports it (event and console).
  const refusedByCsp: string[] = [];
  page.on('console', (message) => void (/Content Security Policy/i.test(message.text()) && refusedByCsp.push(message.text())));
  // (a script's text: this test is typed for Node, without the DOM's types)
  await page.addInitScript(
    "document.addEventListener('securitypolicyviolation', (event) => console.error('Content Security Policy violation: ' + event.violatedDirective + ' ' + event.blockedURI));",
  );
  const answer = await page.goto(`${base}/docs`);
  expect(answer?.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
  expect(answer?.headers()['x-content-type-options']).toBe('nosniff');
  await page.waitForSelector('.opblock', { timeout: 30_000 });
  // Expanding an operation renders its parameters, responses and models: still nothing refused.
  await page.click('.opblock-summary');
  await page.waitForSelector('.opblock-body', { timeout: 10_000 });
  expect(refusedByCsp).toEqual([]);
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

it('refuses to be framed by another page (frame-ancestors none)', async () => {
  if (!browser || !server) return;
  const address = server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const page = await browser.newPage();
  const refused: string[] = [];
  page.on('console', (message) => void (/frame-ancestors|Refused to frame|refused to connect/i.test(message.text()) && refused.push(message.text())));
  const framed = page.waitForEvent('framenavigated', { predicate: (frame) => frame !== page.mainFrame(), timeout: 10_000 });
  await page.setContent(`<iframe src="${base}/docs"></iframe>`);
  const frame = await framed;
  // Chromium shows its error page in place of the framed document: no Swagger UI in it.
  await page.waitForTimeout(500);
  expect(await frame.$('#swagger-ui')).toBeNull();
  expect(refused.join('\n')).toMatch(/frame-ancestors 'none'/);
}, 60_000);
