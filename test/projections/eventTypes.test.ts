/**
 * The event types the projections and `cli import` accept are the zod schemas' (issue 28): every type
 * of every aggregate's schema is read by the projections of its streams and accepted by import, and
 * nothing else is. A type added to a schema but not handled fails here.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Database } from '../../src/database/database.js';
import { openPGlite } from '../../src/database/pglite.js';
import { STATUS_AFTER } from '../../src/domain/deviceDispense/decider.js';
import { DEVICE_DISPENSE_EVENT_TYPES, deviceDispenseEventSchema } from '../../src/domain/deviceDispense/events.js';
import { DOMAIN_EVENT_FAMILIES } from '../../src/domain/eventCatalogue.js';
import { LICENSE_EVENT_TYPES, licenseEventSchema } from '../../src/domain/license/events.js';
import type { RecordedEvent } from '../../src/eventStore/eventStore.js';
import { domainEventCheck } from '../../src/history/eventChecks.js';
import { createProjections, type Projections } from '../../src/projections/registry.js';
import { createLicenseStore } from '../../src/readModels/licenseStore.js';
import { createPostgresDeviceDispenseStore } from '../../src/readModels/postgresDeviceDispenseStore.js';
import { newEvent } from '../support/events.js';

const recorded = (streamName: string, type: string): RecordedEvent => ({ ...newEvent(type, {}), streamName, revision: 0n, position: '1:1' });
/** The literal of each option of a discriminated union, read off the zod schema. */
const literals = (schema: { options: ReadonlyArray<{ shape: { type: { value: unknown } } }> }) => schema.options.map((o) => o.shape.type.value);

describe('event types derived from the schemas', () => {
  let database: Database;
  let projections: Projections;
  beforeAll(async () => {
    database = await openPGlite();
    projections = await createProjections({
      database,
      deviceDispenses: await createPostgresDeviceDispenseStore(database, { table: 'device_dispenses' }),
      licenses: await createLicenseStore(database),
    });
  });
  afterAll(async () => database.close());

  it('the type sets are exactly the schemas’ types', () => {
    expect([...DEVICE_DISPENSE_EVENT_TYPES]).toEqual([
      'DeviceDispenseCreated',
      'DeviceDispenseCompleted',
      'DeviceDispenseStopped',
      'DeviceDispenseMarkedInError',
      'DeviceDispenseExpired',
    ]);
    expect([...DEVICE_DISPENSE_EVENT_TYPES]).toEqual(literals(deviceDispenseEventSchema));
    expect([...LICENSE_EVENT_TYPES]).toEqual(literals(licenseEventSchema));
    expect(Object.keys(STATUS_AFTER).sort()).toEqual([...DEVICE_DISPENSE_EVENT_TYPES].sort());
  });

  it.each(literals(deviceDispenseEventSchema) as string[])('%s is read by device_dispenses and status_change_events', (type) => {
    const event = recorded('device_dispense-d1', type);
    expect(projections.deviceDispenses.relevant!(event)).toBe(true);
    expect(projections.statusChangeEvents.relevant!(event)).toBe(true);
    expect(projections.licenses.relevant!(event)).toBe(false);
  });

  it.each(literals(licenseEventSchema) as string[])('%s is read by licenses', (type) => {
    const event = recorded('legal_entity_licenses-le-1', type);
    expect(projections.licenses.relevant!(event)).toBe(true);
    expect(projections.deviceDispenses.relevant!(event)).toBe(false);
  });

  it('a type outside the schemas is read by no projection', () => {
    for (const stream of ['device_dispense-d1', 'legal_entity_licenses-le-1'])
      for (const projection of Object.values(projections)) expect(projection.relevant!(recorded(stream, 'DeviceDispenseVanished'))).toBe(false);
  });

  it('import knows every type of every aggregate (its data is checked, never its type refused)', () => {
    for (const family of DOMAIN_EVENT_FAMILIES)
      for (const type of family.types) {
        const refused = domainEventCheck({ stream_name: `${family.streamPrefix}x`, event_type: type, data: {} });
        expect(refused).toMatch(new RegExp(`^${type}: data\\.`));
      }
  });
});
