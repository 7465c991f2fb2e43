/**
 * The device dispense decider (status model of spec §1.1): in_progress → completed | stopped | unknown;
 * mark in error from any status but completed and entered_in_error. The command files call the
 * transition guards at the place their seed lists the transition check; decide() calls them again.
 */
import { conflict } from '../shared/esozError.js';
import type { Actor, Decider } from '../shared/decider.js';
import type { CodeableConcept, DeviceDispenseDocument, DeviceDispenseStatus } from './document.js';
import type { DeviceDispenseEvent, ReferenceUse } from './events.js';

/** The status each event leaves a dispense in (spec §1.1). */
export const STATUS_AFTER: Record<DeviceDispenseEvent['type'], DeviceDispenseStatus> = {
  DeviceDispenseCreated: 'in_progress',
  DeviceDispenseCompleted: 'completed',
  DeviceDispenseStopped: 'stopped',
  DeviceDispenseMarkedInError: 'entered_in_error',
  DeviceDispenseExpired: 'unknown',
};

export type DeviceDispenseState = DeviceDispenseDocument | null;

export type DeviceDispenseCommand =
  | {
      type: 'CreateDeviceDispense';
      dispense: Omit<DeviceDispenseDocument, 'signed_content_links'>;
      patient_id: string;
      reference?: ReferenceUse[];
      actor: Actor;
    }
  | {
      type: 'CompleteDeviceDispense';
      when_handed_over: string;
      payment_id?: string;
      payment_amount?: number;
      signed_content_link: string;
      device_request_completed?: string;
      actor: Actor;
    }
  | { type: 'StopDeviceDispense'; actor: Actor }
  | { type: 'MarkDeviceDispenseInError'; status_reason: CodeableConcept; signed_content_link: string; actor: Actor }
  | { type: 'ExpireDeviceDispense'; ttl_days: number; actor: Actor };

export function assertCanBeCompleted(state: DeviceDispenseDocument): void {
  if (state.status !== 'in_progress') throw conflict(`Device dispense in status ${state.status} cannot be completed`);
}
function assertCanBeStopped(state: DeviceDispenseDocument): void {
  if (state.status !== 'in_progress') throw conflict(`Device dispense in status ${state.status} cannot be stopped`);
}
export function assertCanBeMarkedInError(state: DeviceDispenseDocument): void {
  if (state.status === 'entered_in_error' || state.status === 'completed')
    throw conflict(`Device dispense in status ${state.status} cannot be marked in error`);
}

const existing = (state: DeviceDispenseState): DeviceDispenseDocument => {
  // Commands check existence (404) first; reaching here without a state is a programming error.
  if (!state) throw new Error('Device dispense does not exist');
  return state;
};

function decide(command: DeviceDispenseCommand, state: DeviceDispenseState): DeviceDispenseEvent[] {
  switch (command.type) {
    case 'CreateDeviceDispense':
      if (state) throw conflict('Device dispense with such id already exists');
      return [
        {
          type: 'DeviceDispenseCreated',
          data: {
            dispense: command.dispense,
            patient_id: command.patient_id,
            ...(command.reference ? { reference: command.reference } : {}),
            ...command.actor,
          },
        },
      ];
    case 'CompleteDeviceDispense': {
      const current = existing(state);
      assertCanBeCompleted(current);
      const { type: _type, actor, ...completion } = command;
      return [{ type: 'DeviceDispenseCompleted', data: { id: current.id, ...completion, ...actor } }];
    }
    case 'StopDeviceDispense':
      assertCanBeStopped(existing(state));
      return [{ type: 'DeviceDispenseStopped', data: { id: existing(state).id, ...command.actor } }];
    case 'MarkDeviceDispenseInError': {
      const current = existing(state);
      assertCanBeMarkedInError(current);
      return [
        {
          type: 'DeviceDispenseMarkedInError',
          data: { id: current.id, status_reason: command.status_reason, signed_content_link: command.signed_content_link, ...command.actor },
        },
      ];
    }
    case 'ExpireDeviceDispense':
      // The sweep may race a stop or a complete: expiring is only for what is still in progress.
      if (!state || state.status !== 'in_progress') return [];
      return [{ type: 'DeviceDispenseExpired', data: { id: state.id, ttl_days: command.ttl_days, ...command.actor } }];
  }
}

const touched = (state: DeviceDispenseDocument, { at, by }: { at: string; by: string }) => ({ ...state, updated_at: at, updated_by: by });

function evolve(state: DeviceDispenseState, event: DeviceDispenseEvent): DeviceDispenseState {
  if (event.type === 'DeviceDispenseCreated') return { ...event.data.dispense, status: STATUS_AFTER[event.type], signed_content_links: [] };
  if (!state) return state; // a stream always starts with its creation; ignore anything else defensively
  switch (event.type) {
    case 'DeviceDispenseCompleted': {
      const { when_handed_over, payment_id, payment_amount, signed_content_link } = event.data;
      return {
        ...touched(state, event.data),
        status: STATUS_AFTER[event.type],
        when_handed_over,
        ...(payment_id !== undefined ? { payment_id } : {}),
        ...(payment_amount !== undefined ? { payment_amount } : {}),
        signed_content_links: [...state.signed_content_links, signed_content_link],
      };
    }
    case 'DeviceDispenseStopped':
      return { ...touched(state, event.data), status: STATUS_AFTER[event.type] };
    case 'DeviceDispenseMarkedInError':
      return {
        ...touched(state, event.data),
        status: STATUS_AFTER[event.type],
        status_reason: event.data.status_reason,
        signed_content_links: [...state.signed_content_links, event.data.signed_content_link],
      };
    case 'DeviceDispenseExpired':
      return { ...touched(state, event.data), status: STATUS_AFTER[event.type] };
  }
}

export const deviceDispenseDecider: Decider<DeviceDispenseState, DeviceDispenseCommand, DeviceDispenseEvent> = {
  initialState: () => null,
  evolve,
  decide,
};
