/** Every projection by name: the server runs them, the CLI rebuilds and verifies them. */
import type { Stores } from '../stores.js';
import { createDeviceDispensesProjection, DEVICE_DISPENSES_PROJECTION } from './deviceDispensesProjection.js';
import { createLicensesProjection, LICENSES_PROJECTION } from './licensesProjection.js';
import type { Projection } from './projection.js';
import { createStatusChangeEventsProjection, STATUS_CHANGE_EVENTS_PROJECTION } from './statusChangeEventsProjection.js';

export type Projections = { deviceDispenses: Projection; licenses: Projection; statusChangeEvents: Projection };

export async function createProjections(stores: Pick<Stores, 'database' | 'deviceDispenses' | 'licenses'>): Promise<Projections> {
  return {
    deviceDispenses: createDeviceDispensesProjection(stores.deviceDispenses),
    licenses: createLicensesProjection(stores.licenses),
    statusChangeEvents: await createStatusChangeEventsProjection(stores.database),
  };
}

export const PROJECTION_NAMES = [DEVICE_DISPENSES_PROJECTION, LICENSES_PROJECTION, STATUS_CHANGE_EVENTS_PROJECTION] as const;
/** The projections that build read models (verify compares these with a fresh replay). */
export const READ_MODEL_PROJECTIONS = [DEVICE_DISPENSES_PROJECTION, LICENSES_PROJECTION] as const;
