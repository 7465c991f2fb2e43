/** Given/When/Then for the licences of one legal entity: import, create, update, and every refusal. */
import { describe, expect, it } from '@jest/globals';
import { changedAttributes, licenseDecider } from '../../src/domain/license/decider.js';
import type { LicenseEvent } from '../../src/domain/license/events.js';
import type { License } from '../../src/domain/license/license.js';
import { DeciderSpecification, fold } from '../support/deciderSpecification.js';

const given = DeciderSpecification.for(licenseDecider);
const actor = { at: '2026-11-23T10:00:00.000Z', by: 'user-1', legal_entity_id: 'le-1' };
const TODAY = '2026-11-23';

const license = (overrides: Partial<License> = {}): License => ({
  id: 'lic-primary',
  legal_entity_id: 'le-1',
  type: 'PHARMACY',
  license_number: 'АЕ 1',
  issued_by: 'Держлікслужба',
  issued_date: '2020-01-01',
  active_from_date: '2020-01-01',
  expiry_date: null,
  order_no: 'ORD-1',
  what_licensed: null,
  issuer_status: null,
  is_primary: true,
  is_active: true,
  inserted_at: actor.at,
  inserted_by: actor.by,
  updated_at: actor.at,
  updated_by: actor.by,
  ...overrides,
});
const primary = license();
const additional = license({ id: 'lic-add', is_primary: false, license_number: 'fd1', order_no: 'ORD-2' });
const imported = (l: License): LicenseEvent => ({ type: 'LicenseImported', data: { license: l, ...actor } });
const created = (l: License): LicenseEvent => ({ type: 'LicenseCreated', data: { license: l, ...actor } });

describe('licence decider', () => {
  it('imports the licences not yet in the stream, and nothing twice', () => {
    given([])
      .when({ type: 'ImportLicenses', licenses: [primary, additional], actor })
      .then([imported(primary), imported(additional)]);
    given([imported(primary)])
      .when({ type: 'ImportLicenses', licenses: [primary, additional], actor })
      .then([imported(additional)]);
    given([imported(primary), imported(additional)])
      .when({ type: 'ImportLicenses', licenses: [primary, additional], actor })
      .thenNothingHappened();
  });

  it('creates an additional licence when an active primary one exists and the type is free', () => {
    given([imported(primary)])
      .when({ type: 'CreateLicense', license: additional, today: TODAY, actor })
      .then([created(additional)]);
  });

  it('refuses a create without an active primary licence: none, expired, or inactive', () => {
    const noPrimary = (error: unknown) => expect(error).toMatchObject({ status: 404, message: 'No active primary license found for legal entity' });
    given([]).when({ type: 'CreateLicense', license: additional, today: TODAY, actor }).thenThrows(noPrimary);
    given([imported(license({ expiry_date: '2026-11-22' }))])
      .when({ type: 'CreateLicense', license: additional, today: TODAY, actor })
      .thenThrows(noPrimary);
    given([imported(license({ is_active: false }))])
      .when({ type: 'CreateLicense', license: additional, today: TODAY, actor })
      .thenThrows(noPrimary);
    // Expiring today is still active ("expiry_date >= current_date()").
    given([imported(license({ expiry_date: TODAY }))])
      .when({ type: 'CreateLicense', license: additional, today: TODAY, actor })
      .then([created(additional)]);
  });

  it('refuses a second additional licence of a type with 409', () => {
    given([imported(primary), created(additional)])
      .when({ type: 'CreateLicense', license: { ...additional, id: 'lic-add-2' }, today: TODAY, actor })
      .thenThrows((error) => expect(error).toMatchObject({ status: 409, message: 'License with type PHARMACY is already present' }));
  });

  it('updates only what changed, and nothing when nothing did', () => {
    given([imported(primary), created(additional)])
      .when({ type: 'UpdateLicense', id: 'lic-add', changes: { order_no: 'ORD-3', license_number: 'fd1', expiry_date: null }, actor })
      .then([{ type: 'LicenseUpdated', data: { id: 'lic-add', changes: { order_no: 'ORD-3' }, ...actor } }]);
    given([imported(primary), created(additional)])
      .when({ type: 'UpdateLicense', id: 'lic-add', changes: { order_no: 'ORD-2' }, actor })
      .thenNothingHappened();
    given([imported(primary)])
      .when({ type: 'UpdateLicense', id: 'missing', changes: {}, actor })
      .thenThrows((error) => expect(error).toMatchObject({ status: 404, message: 'License was not found' }));
  });

  it('evolves an update into the licence with updated_at and updated_by', () => {
    const later = { ...actor, at: '2026-11-24T09:00:00.000Z', by: 'user-2' };
    const history: LicenseEvent[] = [
      imported(primary),
      created(additional),
      { type: 'LicenseUpdated', data: { id: 'lic-add', changes: { order_no: 'ORD-9' }, ...later } },
    ];
    const state = fold(licenseDecider, history);
    expect(state.licenses['lic-add']).toEqual({ ...additional, order_no: 'ORD-9', updated_at: later.at, updated_by: 'user-2' });
    expect(state.licenses['lic-primary']).toEqual(primary);
  });

  it('treats a null expiry as a change from a date', () => {
    expect(changedAttributes(license({ expiry_date: '2030-01-01' }), { expiry_date: null })).toEqual({ expiry_date: null });
    expect(changedAttributes(license(), { expiry_date: undefined })).toEqual({});
  });
});
