import type { ReferenceDataFile } from '../../src/referenceData/referenceData.js';
import { ids, referenceData } from '../support/fixtures.js';

export const licenseIds = {
  primaryCareWithoutLicense: '00000000-0000-4000-8000-000000000101',
  suspendedPharmacy: '00000000-0000-4000-8000-000000000102',
  expiredPrimaryPharmacy: '00000000-0000-4000-8000-000000000103',
  importedAdditionalOfOther: '00000000-0000-4000-8000-000000000104',
  suspendedPrimary: '00000000-0000-4000-8000-000000000105',
  expiredPrimary: '00000000-0000-4000-8000-000000000106',
  racePharmacy: '00000000-0000-4000-8000-000000000107',
  racePrimary: '00000000-0000-4000-8000-000000000108',
} as const;

const primary = (id: string, legalEntityId: string, expiry: string | null): ReferenceDataFile['licenses'][number] => ({
  id,
  legal_entity_id: legalEntityId,
  is_primary: true,
  type: 'PHARMACY',
  license_number: `L-${id.slice(-3)}`,
  issued_by: 'Держлікслужба',
  issued_date: '2019-01-01',
  active_from_date: '2019-01-01',
  expiry_date: expiry,
  order_no: 'ORD',
  what_licensed: 'роздрібна торгівля',
  is_active: true,
});

/** The fixture reference data plus legal entities that break each licence rule. */
export function licenseReferenceData(): ReferenceDataFile {
  const data = referenceData();
  data.legal_entities.push(
    { id: licenseIds.primaryCareWithoutLicense, type: 'PRIMARY_CARE', status: 'ACTIVE', name: 'Амбулаторія без ліцензії', edrpou: '1' },
    { id: licenseIds.suspendedPharmacy, type: 'PHARMACY', status: 'SUSPENDED', name: 'Призупинена аптека', edrpou: '2' },
    { id: licenseIds.expiredPrimaryPharmacy, type: 'PHARMACY', status: 'ACTIVE', name: 'Аптека з простроченою ліцензією', edrpou: '3' },
    { id: licenseIds.racePharmacy, type: 'PHARMACY', status: 'ACTIVE', name: 'Аптека для гонки', edrpou: '4' },
  );
  data.licenses.push(
    primary(licenseIds.suspendedPrimary, licenseIds.suspendedPharmacy, null),
    primary(licenseIds.expiredPrimary, licenseIds.expiredPrimaryPharmacy, '2020-01-01'),
    primary(licenseIds.racePrimary, licenseIds.racePharmacy, '2099-12-31'),
    { ...primary(licenseIds.importedAdditionalOfOther, ids.otherLegalEntity, null), is_primary: false, license_number: 'ADD-1' },
  );
  // The fixture pharmacist also works for each legal entity a licence rule needs: licences are for
  // active employees of the token's legal entity (caller class employee), so the rules are reached.
  const employedAt = [
    ids.inactiveLegalEntity,
    licenseIds.primaryCareWithoutLicense,
    licenseIds.suspendedPharmacy,
    licenseIds.expiredPrimaryPharmacy,
    licenseIds.racePharmacy,
  ];
  data.employees.push(
    ...employedAt.map((legalEntityId, n) => ({
      id: `00000000-0000-4000-8000-0000000001${String(n + 10)}`,
      party_id: ids.party,
      legal_entity_id: legalEntityId,
      status: 'APPROVED',
      is_active: true,
      employee_type: 'PHARMACIST',
    })),
  );
  return data;
}

export const createLicenseBody = (overrides: Record<string, unknown> = {}) => ({
  type: 'PHARMACY',
  license_number: 'fd123443',
  issued_by: 'Кваліфікаційна комісія',
  issued_date: '2022-02-28',
  active_from_date: '2022-03-01',
  expiry_date: '2027-02-28',
  order_no: 'ORD-77',
  what_licensed: 'виготовлення лікарських засобів',
  is_primary: false,
  ...overrides,
});
