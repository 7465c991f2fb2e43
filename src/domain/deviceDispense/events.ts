/** The device dispense's domain events. Every one records who (user, legal entity) and when. */
import { z } from 'zod';
import { codeableConceptSchema, deviceDispenseDocumentSchema } from './document.js';
import { eventTypesOf } from '../shared/eventTypes.js';

const actor = { at: z.string(), by: z.string(), legal_entity_id: z.string().nullable() };

/** A reference record a decision read, by version (optional: events written before it was recorded have none). */
export const referenceUseSchema = z.object({ kind: z.string(), id: z.string(), version: z.number().int() });
export type ReferenceUse = z.infer<typeof referenceUseSchema>;

export const deviceDispenseEventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('DeviceDispenseCreated'),
    data: z.object({
      dispense: deviceDispenseDocumentSchema.omit({ signed_content_links: true }),
      patient_id: z.string(),
      reference: z.array(referenceUseSchema).optional(),
      ...actor,
    }),
  }),
  z.object({
    type: z.literal('DeviceDispenseCompleted'),
    data: z.object({
      id: z.string(),
      when_handed_over: z.string(),
      payment_id: z.string().optional(),
      payment_amount: z.number().optional(),
      signed_content_link: z.string(),
      /** The device request (with a quantity) this completion completed here (spec §1.3.2). */
      device_request_completed: z.string().optional(),
      ...actor,
    }),
  }),
  z.object({ type: z.literal('DeviceDispenseStopped'), data: z.object({ id: z.string(), ...actor }) }),
  z.object({
    type: z.literal('DeviceDispenseMarkedInError'),
    data: z.object({ id: z.string(), status_reason: codeableConceptSchema, signed_content_link: z.string(), ...actor }),
  }),
  z.object({ type: z.literal('DeviceDispenseExpired'), data: z.object({ id: z.string(), ttl_days: z.number(), ...actor }) }),
]);

export type DeviceDispenseEvent = z.infer<typeof deviceDispenseEventSchema>;
export type DeviceDispenseEventType = DeviceDispenseEvent['type'];

/** Every type of the schema above (derived, never hand-kept: the projections and import read this set). */
export const DEVICE_DISPENSE_EVENT_TYPES: ReadonlySet<string> = new Set<DeviceDispenseEventType>(eventTypesOf(deviceDispenseEventSchema));

export const DEVICE_DISPENSE_STREAM_PREFIX = 'device_dispense-';
export const deviceDispenseStream = (id: string) => `${DEVICE_DISPENSE_STREAM_PREFIX}${id}`;

/** Parses a stored event (validated: auditors replay whatever history there is). */
export const parseDeviceDispenseEvent = (event: { type: string; data: unknown }): DeviceDispenseEvent =>
  deviceDispenseEventSchema.parse({ type: event.type, data: event.data });
