/** Every projection by name: the server runs them, the CLI rebuilds and verifies them. */
import type { Database } from '../database/database.js';
import type { DeviceDispenseStore } from '../readModels/deviceDispenseStore.js';
import type { LicenseStore } from '../readModels/licenseStore.js';
import { createDeviceDispensesProjection, DEVICE_DISPENSES_PROJECTION } from './deviceDispensesProjection.js';
import { createLicensesProjection, LICENSES_PROJECTION } from './licensesProjection.js';
import type { Projection } from './projection.js';
import { withDeadLetters, type GuardOptions } from './deadLetterGuard.js';
import { createStatusChangeEventsProjection, STATUS_CHANGE_EVENTS_PROJECTION } from '../eventManager/statusChangeEventsProjection.js';

export type Projections = { deviceDispenses: Projection; licenses: Projection; statusChangeEvents: Projection };

/** The ports the projections write: each read model's store, and the database of the event-manager log. */
export type ProjectionPorts = { database: Database; deviceDispenses: DeviceDispenseStore; licenses: LicenseStore };

/**
 * With `guard` (the server and the CLI), each projection is behind its dead letters (deadLetterGuard.ts):
 * parked and skipped events left out, a poison event recorded and then halted at or parked.
 */
export async function createProjections(ports: ProjectionPorts, guard?: Omit<GuardOptions, 'name'>): Promise<Projections> {
  const guarded = (projection: Projection) => (guard ? withDeadLetters(projection, guard) : projection);
  return {
    deviceDispenses: guarded(createDeviceDispensesProjection(ports.deviceDispenses)),
    licenses: guarded(createLicensesProjection(ports.licenses)),
    statusChangeEvents: guarded(await createStatusChangeEventsProjection(ports.database)),
  };
}

export const PROJECTION_NAMES = [DEVICE_DISPENSES_PROJECTION, LICENSES_PROJECTION, STATUS_CHANGE_EVENTS_PROJECTION] as const;
/** The projections that build read models (verify compares these with a fresh replay). */
export const READ_MODEL_PROJECTIONS = [DEVICE_DISPENSES_PROJECTION, LICENSES_PROJECTION] as const;
