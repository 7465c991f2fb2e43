/**
 * Every aggregate's events: its streams (by name prefix) and the zod schema of its events. The sets of
 * types the projections and `cli import` accept are derived from these schemas, never kept by hand.
 */
import type { z } from 'zod';
import { DEVICE_DISPENSE_STREAM_PREFIX, deviceDispenseEventSchema } from './deviceDispense/events.js';
import { DEVICE_REQUEST_DISPENSING_STREAM_PREFIX, deviceRequestDispensingEventSchema } from './deviceRequestDispensing/decider.js';
import { LICENSES_STREAM_PREFIX, licenseEventSchema } from './license/events.js';
import { eventTypesOf } from './shared/eventTypes.js';

export type EventFamily = {
  readonly name: string;
  /** A stream belongs to the family when its name starts with this (or equals it, for one fixed stream). */
  readonly streamPrefix: string;
  readonly types: ReadonlySet<string>;
  /** Validates `{ type, data }` as one of the family's events. */
  readonly schema: z.ZodType;
};

const family = (name: string, streamPrefix: string, schema: Parameters<typeof eventTypesOf>[0]): EventFamily => ({
  name,
  streamPrefix,
  types: new Set(eventTypesOf(schema)),
  schema,
});

export const DOMAIN_EVENT_FAMILIES: readonly EventFamily[] = [
  family('device_dispense', DEVICE_DISPENSE_STREAM_PREFIX, deviceDispenseEventSchema),
  family('device_request_dispensing', DEVICE_REQUEST_DISPENSING_STREAM_PREFIX, deviceRequestDispensingEventSchema),
  family('license', LICENSES_STREAM_PREFIX, licenseEventSchema),
];
