/** Loading device dispenses and the dispenses of a device request from their streams. */
import { deviceDispenseDecider, type DeviceDispenseState } from '../../domain/deviceDispense/decider.js';
import type { DeviceDispenseDocument } from '../../domain/deviceDispense/document.js';
import { deviceDispenseStream, parseDeviceDispenseEvent, type DeviceDispenseEvent } from '../../domain/deviceDispense/events.js';
import {
  deviceRequestDispensingDecider,
  deviceRequestDispensingStream,
  parseDeviceRequestDispensingEvent,
} from '../../domain/deviceRequestDispensing/decider.js';
import { z } from 'zod';
import type { StreamReader } from '../../eventStore/eventStore.js';
import type { MediaStorage } from '../../media/mediaStorage.js';
import type { Caller } from './commandContext.js';
import type { CommandStream } from './commandHandler.js';
import { loadAggregate, type LoadedAggregate } from './eventStream.js';

const loadDeviceDispense = (store: StreamReader, id: string): Promise<LoadedAggregate<DeviceDispenseState>> =>
  loadAggregate(store, deviceDispenseStream(id), deviceDispenseDecider, parseDeviceDispenseEvent);

/** A device dispense's stream, for the command handler. */
export const deviceDispenseCommandStream = (id: string): CommandStream<DeviceDispenseState, DeviceDispenseEvent> => ({
  streamName: deviceDispenseStream(id),
  decider: deviceDispenseDecider,
  parse: parseDeviceDispenseEvent,
});

const loadDeviceRequestDispensing = (store: StreamReader, deviceRequestId: string) =>
  loadAggregate(store, deviceRequestDispensingStream(deviceRequestId), deviceRequestDispensingDecider, parseDeviceRequestDispensingEvent);

/** The dispense if it exists and is the patient's from the URL (else the methods answer 404). */
export const ofPatient = (state: DeviceDispenseState, patientId: string): DeviceDispenseDocument | null =>
  state && state.subject.identifier.value === patientId ? state : null;

/** The body of the signed actions (complete, mark in error): the signed content, checked before the job. */
export const signedRequestSchema = z.object({ signed_data: z.string().min(1) });
export type SignedActionInput = { patient_id: string; device_dispense_id: string; body: z.infer<typeof signedRequestSchema> };

/**
 * Saves the signed content of an action and returns its link. Keyed by the caller's causation id (the
 * job), so a retry on conflict or a re-run of the job saves the same file again instead of another one.
 */
export const saveSignedContent = (media: MediaStorage, dispenseId: string, caller: Caller, signedData: string): Promise<string> =>
  media.save('device_dispenses', `${dispenseId}/${caller.causationId}.jws`, signedData);

export type AttachedDispense = { id: string; attachedAt: string; document: DeviceDispenseDocument | null };

/**
 * The dispensing of a device request: its stream (state and revision, to append against) and every
 * dispense attached to it. `document` is null for one attached but not created yet (its create is
 * between its two appends, or will be re-run by its job).
 */
export async function loadDispensingOfDeviceRequest(store: StreamReader, deviceRequestId: string) {
  const dispensing = await loadDeviceRequestDispensing(store, deviceRequestId);
  const attached = await Promise.all(
    dispensing.state.attached.map(async ({ id, at }): Promise<AttachedDispense> => ({
      id,
      attachedAt: at,
      document: (await loadDeviceDispense(store, id)).state,
    })),
  );
  // A dispense id attached here but created on another request (lost race on the id) is not ours.
  const dispenses = attached.filter((a) => a.document === null || a.document.based_on.identifier.value === deviceRequestId);
  return { ...dispensing, dispenses, documents: dispenses.flatMap((a) => (a.document ? [a.document] : [])) };
}

/**
 * The device request as this registry knows it: the reference data's status, except that a request
 * with a quantity is completed once one of its dispenses is (Complete sets it so in ЕСОЗ; the device
 * request registry is not ours to write, so we derive it from our own events).
 */
export function effectiveDeviceRequestStatus(status: string, hasQuantity: boolean, dispenses: DeviceDispenseDocument[]): string {
  return hasQuantity && dispenses.some((d) => d.status === 'completed') ? 'completed' : status;
}
