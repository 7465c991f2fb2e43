/**
 * Start-up sanity: the event store is wiped behind the app's back (es_events and es_streams emptied)
 * while the read models and their checkpoints stay. Started again, the app refuses with an error that
 * names the projection (ON_CHECKPOINT_AHEAD=fail, the default), or rebuilds the projections from the
 * new log (rebuild); in neither case is a new event skipped. PGlite always, PostgreSQL with DATABASE_URL.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { eventually } from '../support/events.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { openStores } from '../../src/stores.js';
import { deviceRequestPool, dispenseApi } from '../deviceDispenses/helpers.js';
import { referenceData } from '../support/fixtures.js';
import { startTestServer, testBackends, type TestServer } from '../support/testServer.js';

async function wipeEventStore(t: TestServer): Promise<void> {
  const stores = await openStores(loadConfig(t.env), silentLogger());
  try {
    await stores.database.pool.query('truncate es_events, es_streams');
  } finally {
    await stores.close();
  }
}

describe.each(testBackends())('checkpoint beyond the head of the log: %s', (backend) => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  async function serverWithHistory(mode: 'fail' | 'rebuild') {
    const data = referenceData();
    const nextRequest = deviceRequestPool(data, 2);
    t = await startTestServer({ data, backend, env: { ON_CHECKPOINT_AHEAD: mode } });
    const api = dispenseApi(t);
    const before = await api.createInProgress(nextRequest());
    await t.stop();
    await wipeEventStore(t);
    return { api, before, nextRequest };
  }

  it('refuses to start, naming the projection and what to do', async () => {
    await serverWithHistory('fail');
    await expect(t!.restart()).rejects.toThrow(
      /Projection (device_dispenses|licenses|status_change_events)\S*: its stored checkpoint \S+ lies beyond the head of the event log .*ON_CHECKPOINT_AHEAD=rebuild/,
    );
  }, 90_000);

  it('with ON_CHECKPOINT_AHEAD=rebuild replays the new log from zero: old rows gone, new events projected', async () => {
    const { api, before, nextRequest } = await serverWithHistory('rebuild');
    await t!.restart();
    expect((await api.get(before.id)).status).toBe(404); // its events are gone, so is its row
    const after = await api.createInProgress(nextRequest()); // a new event is not skipped: GET shows it
    expect(after.status).toBe('in_progress');
    // The job committed its row inline; the projections pass its events right after: none is skipped.
    const lags = async () => {
      const health = await request(t!.app)
        .get('/api/admin/projections')
        .set('authorization', `Bearer ${await t!.token()}`);
      expect(health.status).toBe(200);
      return (health.body.data as Array<{ lag: number }>).map((projection) => projection.lag);
    };
    await eventually(async () => (await lags()).every((lag) => lag === 0), 10_000, 'every projection caught up');
  }, 90_000);
});
