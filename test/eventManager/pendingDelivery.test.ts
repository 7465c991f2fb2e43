/**
 * The delivery gauges read only the StatusChangeEvents still to deliver: one indexed read per scrape,
 * whatever the size of the event-manager log (it keeps every entry ever derived).
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { Database } from '../../src/database/database.js';
import { eventManagerSchema, PENDING_DELIVERY_SQL, readPendingDelivery } from '../../src/eventManager/eventManagerLog.js';
import { createPostgresEventStore } from '../../src/eventStore/postgresEventStore.js';
import { createJobStore } from '../../src/jobs/jobStore.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { databaseFactories } from '../support/databases.js';
import { plansBeforeAndAfterAnalyze } from '../support/queryPlans.js';

describe.each(databaseFactories())('pending StatusChangeEvent deliveries on $name', (factory) => {
  let database: Database;
  beforeEach(async () => {
    database = await factory.open();
    await database.migrate('event_manager', eventManagerSchema);
    // Delivered entries (more for the plan test), then three still to deliver: one not tried yet, two whose last attempt failed.
    await addDelivered(100);
    await database.pool.query(
      `insert into event_manager_log (id, entity_type, entity_id, payload, attempts, last_error) values
       (gen_random_uuid(), 'DeviceDispense', 'p1', '{}', 0, null),
       (gen_random_uuid(), 'DeviceDispense', 'p2', '{}', 1, 'HTTP 503'),
       (gen_random_uuid(), 'DeviceDispense', 'p3', '{}', 2, 'timeout')`,
    );
  });
  afterEach(async () => database.close());

  const addDelivered = (n: number) =>
    database.pool.query(
      `insert into event_manager_log (id, entity_type, entity_id, payload, attempts, delivered_at)
       select gen_random_uuid(), 'DeviceDispense', 'e' || i, '{}', 1, now() from generate_series(1, $1::int) as i`,
      [n],
    );

  it('counts the undelivered entries, their attempts and the failing ones', async () => {
    expect(await readPendingDelivery(database)).toEqual({ backlog: 3, attempts: 3, failing: 2 });
  });

  it('reads them through the partial index of undelivered entries, before and after statistics', async () => {
    await addDelivered(20_000); // a log the size where a full scan would cost
    const usesIndex = expect.stringContaining('"Index Name":"event_manager_log_pending"');
    expect(await plansBeforeAndAfterAnalyze(database, PENDING_DELIVERY_SQL, 'event_manager_log')).toEqual([
      [false, usesIndex],
      [true, usesIndex],
    ]);
  });

  it('a scrape reads them once for its three gauges', async () => {
    await createJobStore(database); // the jobs gauge reads its table
    const metrics = createMetrics({ database, eventStore: await createPostgresEventStore(database), projections: () => [] });
    const query = jest.spyOn(database.pool, 'query');
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^esoz_status_change_events_backlog 3$/m);
    expect(text).toMatch(/^esoz_status_change_event_pending_attempts 3$/m);
    expect(text).toMatch(/^esoz_status_change_event_delivery_failing 2$/m);
    expect(query.mock.calls.filter(([sql]) => sql === PENDING_DELIVERY_SQL)).toHaveLength(1);
    query.mockRestore();
  });
});
