/**
 * The licences of one legal entity, as one aggregate: "one additional licence per type" and "an
 * active primary licence exists" are rules across a legal entity's licences, so they hold under
 * concurrency only if all of them live in one stream (two creates of one type race on its revision).
 */
import { conflict, notFound } from '../shared/esozError.js';
import type { Actor, Decider } from '../shared/decider.js';
import { isActivePrimary, LICENSE_ATTRIBUTES, type License, type LicenseChanges } from './license.js';
import type { LicenseEvent } from './events.js';

export type LicensesState = { licenses: Record<string, License> };

export type LicenseCommand =
  | { type: 'ImportLicenses'; licenses: License[]; actor: Actor }
  | { type: 'CreateLicense'; license: License; today: string; actor: Actor }
  | { type: 'UpdateLicense'; id: string; changes: LicenseChanges; actor: Actor };

export function assertActivePrimaryLicense(state: LicensesState, today: string): void {
  if (!Object.values(state.licenses).some((l) => isActivePrimary(l, today))) throw notFound('No active primary license found for legal entity');
}

/** One active additional licence per type (the primary licence is not counted: its type is usually the same). */
export function assertTypeNotPresent(state: LicensesState, type: string): void {
  if (Object.values(state.licenses).some((l) => !l.is_primary && l.is_active && l.type === type))
    throw conflict(`License with type ${type} is already present`);
}

/** The attributes that really change (a PATCH resending current values changes nothing). */
export function changedAttributes(license: License, requested: LicenseChanges): LicenseChanges {
  const changed = LICENSE_ATTRIBUTES.filter((key) => key in requested && requested[key] !== undefined && requested[key] !== license[key]);
  return Object.fromEntries(changed.map((key) => [key, requested[key]]));
}

function decide(command: LicenseCommand, state: LicensesState): LicenseEvent[] {
  switch (command.type) {
    case 'ImportLicenses':
      // Safe to run again: a licence already in the stream is not imported twice.
      return command.licenses.filter((l) => !(l.id in state.licenses)).map((license) => ({ type: 'LicenseImported', data: { license, ...command.actor } }));
    case 'CreateLicense':
      if (command.license.id in state.licenses) throw conflict('License with such id already exists');
      assertActivePrimaryLicense(state, command.today);
      assertTypeNotPresent(state, command.license.type);
      return [{ type: 'LicenseCreated', data: { license: command.license, ...command.actor } }];
    case 'UpdateLicense': {
      const license = state.licenses[command.id];
      if (!license) throw notFound('License was not found');
      const changes = changedAttributes(license, command.changes);
      return Object.keys(changes).length === 0 ? [] : [{ type: 'LicenseUpdated', data: { id: command.id, changes, ...command.actor } }];
    }
  }
}

function evolve(state: LicensesState, event: LicenseEvent): LicensesState {
  switch (event.type) {
    case 'LicenseImported':
    case 'LicenseCreated':
      return { licenses: { ...state.licenses, [event.data.license.id]: event.data.license } };
    case 'LicenseUpdated': {
      const license = state.licenses[event.data.id];
      if (!license) return state;
      return { licenses: { ...state.licenses, [license.id]: { ...license, ...event.data.changes, updated_at: event.data.at, updated_by: event.data.by } } };
    }
  }
}

export const licenseDecider: Decider<LicensesState, LicenseCommand, LicenseEvent> = {
  initialState: () => ({ licenses: {} }),
  evolve,
  decide,
};
