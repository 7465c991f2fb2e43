import { z } from 'zod';
import { licenseSchema, LICENSE_ATTRIBUTES } from './license.js';
import { eventTypesOf } from '../shared/eventTypes.js';

const actor = { at: z.string(), by: z.string(), legal_entity_id: z.string().nullable() };
const changes = z.object(
  Object.fromEntries(LICENSE_ATTRIBUTES.map((key) => [key, licenseSchema.shape[key].optional()])) as {
    [K in (typeof LICENSE_ATTRIBUTES)[number]]: z.ZodOptional<(typeof licenseSchema.shape)[K]>;
  },
);

export const licenseEventSchema = z.discriminatedUnion('type', [
  /** A licence issued before this registry took over, taken from the reference data. */
  z.object({ type: z.literal('LicenseImported'), data: z.object({ license: licenseSchema, ...actor }) }),
  z.object({ type: z.literal('LicenseCreated'), data: z.object({ license: licenseSchema, ...actor }) }),
  z.object({ type: z.literal('LicenseUpdated'), data: z.object({ id: z.string(), changes, ...actor }) }),
]);
export type LicenseEvent = z.infer<typeof licenseEventSchema>;

export const LICENSE_EVENT_TYPES: ReadonlySet<string> = new Set<LicenseEvent['type']>(eventTypesOf(licenseEventSchema));
export const LICENSES_STREAM_PREFIX = 'legal_entity_licenses-';
export const legalEntityLicensesStream = (legalEntityId: string) => `${LICENSES_STREAM_PREFIX}${legalEntityId}`;
export const parseLicenseEvent = (event: { type: string; data: unknown }): LicenseEvent => licenseEventSchema.parse({ type: event.type, data: event.data });
