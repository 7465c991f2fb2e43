/**
 * The dispenses of one device request: the aggregate that makes "no two in_progress dispenses on one
 * device request" hold under concurrency. Creating a dispense first attaches it here with the stream
 * revision the checks were made against; of two creates at the same moment only one attaches, and
 * the other, retried, sees the first one in progress.
 */
import { z } from 'zod';
import type { Actor, Decider } from '../shared/decider.js';

export const deviceRequestDispensingEventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('DeviceDispenseAttached'),
    data: z.object({ device_request_id: z.string(), device_dispense_id: z.string(), at: z.string(), by: z.string(), legal_entity_id: z.string().nullable() }),
  }),
]);
export type DeviceRequestDispensingEvent = z.infer<typeof deviceRequestDispensingEventSchema>;
/** The dispenses attached to the request, with when (an attached one may not be created yet). */
export type DeviceRequestDispensingState = { attached: Array<{ id: string; at: string }> };
export type DeviceRequestDispensingCommand = { type: 'AttachDeviceDispense'; device_request_id: string; device_dispense_id: string; actor: Actor };

export const DEVICE_REQUEST_DISPENSING_STREAM_PREFIX = 'device_request_dispensing-';
export const deviceRequestDispensingStream = (deviceRequestId: string) => `${DEVICE_REQUEST_DISPENSING_STREAM_PREFIX}${deviceRequestId}`;
export const parseDeviceRequestDispensingEvent = (event: { type: string; data: unknown }) =>
  deviceRequestDispensingEventSchema.parse({ type: event.type, data: event.data });

export const deviceRequestDispensingDecider: Decider<DeviceRequestDispensingState, DeviceRequestDispensingCommand, DeviceRequestDispensingEvent> = {
  initialState: () => ({ attached: [] }),
  evolve: (state, event) => ({ attached: [...state.attached, { id: event.data.device_dispense_id, at: event.data.at }] }),
  decide: (command, state) =>
    state.attached.some((a) => a.id === command.device_dispense_id)
      ? []
      : [
          {
            type: 'DeviceDispenseAttached',
            data: { device_request_id: command.device_request_id, device_dispense_id: command.device_dispense_id, ...command.actor },
          },
        ],
};
