/**
 * GET / (index), /health/live, /health/ready (503 naming what fails) and /metrics (Prometheus text,
 * guarded by METRICS_SCOPE, or open with METRICS_PUBLIC=true).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { loadConfig } from '../../src/config.js';
import { basedOn, deviceRequestPool, dispensesPath } from '../deviceDispenses/helpers.js';
import { createBody, referenceData } from '../support/fixtures.js';
import { newId, startTestServer, type TestServer } from '../support/testServer.js';

describe('service endpoints', () => {
  let t: TestServer;
  const data = referenceData();
  const nextRequest = deviceRequestPool(data, 2);
  beforeAll(async () => void (t = await startTestServer({ data })));
  afterAll(async () => t.close());

  it('GET / is a small index with name, version and links', async () => {
    const res = await request(t.app).get('/');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'esoz-device-dispense-registry', version: expect.any(String) });
    expect(res.body.links).toMatchObject({ docs: '/docs', openapi: '/api/openapi.json', health: '/health/ready' });
  });

  it('liveness and readiness need no token and name only parts, states and counts', async () => {
    expect((await request(t.app).get('/health/live')).body).toEqual({ status: 'ok' });
    const ready = await request(t.app).get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      status: 'ready',
      checks: { event_store: 'ok', database: 'ok', device_dispenses_read_model: 'ok', licenses_read_model: 'ok' },
    });
    expect(ready.body.projections.map((p: { name: string }) => p.name).sort()).toEqual(['device_dispenses', 'licenses', 'status_change_events']);
    for (const projection of ready.body.projections) expect(projection).toMatchObject({ running: true, lag_events: expect.any(Number) });
    expect(JSON.stringify(ready.body)).not.toMatch(/postgres:|pglite|\/tmp|password/i);
  });

  it('/metrics needs the metrics scope and then reports HTTP, jobs, projections, deliveries and appends', async () => {
    expect((await request(t.app).get('/metrics')).status).toBe(401);
    expect(
      (
        await request(t.app)
          .get('/metrics')
          .set('authorization', `Bearer ${await t.token({ scope: 'device_dispense:read' })}`)
      ).status,
    ).toBe(403);

    const id = newId();
    const accepted = await request(t.app)
      .post(dispensesPath())
      .set('authorization', `Bearer ${await t.token()}`)
      .send(createBody(id, basedOn(nextRequest())));
    expect(accepted.status).toBe(202);
    expect((await t.waitForJob(accepted.body.data.links[0].href)).status).toBe(303);
    // A Stop right after: its stream comes from the aggregate cache (one hit).
    const stopped = await request(t.app)
      .patch(`${dispensesPath()}/${id}/actions/stop`)
      .set('authorization', `Bearer ${await t.token()}`);
    expect((await t.waitForJob(stopped.body.data.links[0].href)).status).toBe(303);

    const res = await request(t.app)
      .get('/metrics')
      .set('authorization', `Bearer ${await t.token({ scope: 'admin:read' })}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = res.text;
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toMatch(/http_request_duration_seconds_count\{method="POST",route="\/api\/patients\/:patient_id\/device_dispenses",status="202"\} 1/);
    expect(text).toMatch(/^esoz_jobs_pending 0$/m);
    expect(text).toMatch(/esoz_job_latency_seconds_count\{kind="[^"]+",outcome="processed"\} 1/);
    expect(text).toMatch(/esoz_projection_lag_events\{projection="device_dispenses"\} \d+/);
    expect(text).toMatch(/esoz_projection_lag_seconds\{projection="licenses"\} [\d.]+/);
    expect(text).toMatch(/esoz_status_change_events_backlog \d+/);
    expect(text).toMatch(/esoz_status_change_event_pending_attempts \d+/);
    expect(text).toMatch(/esoz_status_change_event_delivery_failing \d+/);
    expect(text).toMatch(/esoz_event_store_append_duration_seconds_count [1-9]/);
    expect(text).toMatch(/esoz_event_store_concurrency_conflicts_total \d+/);
    expect(text).toMatch(/esoz_aggregate_cache_lookups_total\{result="hit"\} 1\n/);
    expect(text).toMatch(/esoz_aggregate_cache_lookups_total\{result="miss"\} \d+/);
    expect(text).toMatch(/esoz_aggregate_cache_rereads_total 0\n/);
    // The Create read its new device request (a miss, one lookup); the Stop found everything cached.
    expect(text).toMatch(/esoz_reference_views_total\{result="miss"\} [1-9]/);
    expect(text).toMatch(/esoz_reference_views_total\{result="hit"\} [1-9]/);
    expect(text).toMatch(/esoz_reference_lookups_total [1-9]/);
    expect(text).toMatch(/esoz_reference_cache_entries [1-9]/);
  });

  it('readiness answers 503 naming the failing parts once the server stops', async () => {
    const app = t.app;
    await t.stop();
    const res = await request(app).get('/health/ready');
    expect(res.status).toBe(503);
    expect(res.body.status).toBe('not_ready');
    expect(res.body.failing).toEqual(expect.arrayContaining(['projections', 'database']));
    await t.restart(); // close() stops it again
  });
});

describe('METRICS_PUBLIC=true', () => {
  let t: TestServer;
  beforeAll(async () => void (t = await startTestServer({ env: { METRICS_PUBLIC: 'true' } })));
  afterAll(async () => t.close());

  it('serves /metrics without a token', async () => {
    const res = await request(t.app).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toContain('http_request_duration_seconds');
  });

  it('the settings are validated', () => {
    expect(() => loadConfig({ METRICS_PUBLIC: 'yes' })).toThrow(/METRICS_PUBLIC/);
    expect(loadConfig({}).METRICS_SCOPE).toBe('admin:read');
  });
});
