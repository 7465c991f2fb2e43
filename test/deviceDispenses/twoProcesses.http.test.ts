/**
 * Two app servers on one PostgreSQL database, each with its own aggregate cache: what one server
 * changed is never hidden from the other by what the other cached. Server A creates a dispense (and
 * caches it in progress); server B completes it; A's Stop must get the seed's 409 for a completed
 * dispense, not a stop written over the completion.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readWholeStream } from '../../src/eventStore/eventStore.js';
import { referenceData } from '../support/fixtures.js';
import { reportSkipped } from '../support/databases.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { deviceRequestPool, dispenseApi, expectJobConflict } from './helpers.js';

const onServer = process.env.DATABASE_URL ? describe : describe.skip;
if (!process.env.DATABASE_URL) reportSkipped('two app servers on one database: no PostgreSQL at DATABASE_URL');

onServer('two app servers on one PostgreSQL database', () => {
  const data = referenceData();
  const fresh = deviceRequestPool(data, 4);
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    a = await startTestServer({ data, backend: 'postgres' });
    b = await startTestServer({ data, backend: 'postgres', env: { DATABASE_SCHEMA: a.env.DATABASE_SCHEMA! } });
  }, 120_000);
  afterAll(async () => {
    await b?.stop();
    await a?.close();
  });

  it("a Stop on server A after server B completed the dispense A created gets 409 'Device dispense in status completed cannot be stopped'", async () => {
    const [apiA, apiB] = [dispenseApi(a), dispenseApi(b)];
    const created = await apiA.createInProgress(fresh());
    const completed = await apiB.complete(await apiB.get(created.id).then((res) => res.body.data));
    expect(completed.status).toBe('completed');

    expectJobConflict(await apiA.action(created.id, 'stop'), 'Device dispense in status completed cannot be stopped');
    const events = await readWholeStream(a.server.context.eventStore, `device_dispense-${created.id}`);
    expect(events.map((e) => e.type)).toEqual(['DeviceDispenseCreated', 'DeviceDispenseCompleted']);
    expect((await apiA.get(created.id)).body.data.status).toBe('completed');
  });

  it('a Stop on server A after server B stopped it gets the 409 for a stopped dispense, and nothing is written twice', async () => {
    const [apiA, apiB] = [dispenseApi(a), dispenseApi(b)];
    const created = await apiA.createInProgress(fresh());
    await apiB.stop(created.id);
    expectJobConflict(await apiA.action(created.id, 'stop'), 'Device dispense in status stopped cannot be stopped');
    const events = await readWholeStream(b.server.context.eventStore, `device_dispense-${created.id}`);
    expect(events.map((e) => e.type)).toEqual(['DeviceDispenseCreated', 'DeviceDispenseStopped']);
  });
});
