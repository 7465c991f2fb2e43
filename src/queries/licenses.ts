/**
 * Get licenses (spec §2.4): the active licences of the token's legal entity, filtered and paged; and
 * one licence by id (404 “License was not found” for another legal entity's).
 */
import { z } from 'zod';
import { pageNumber, pageSize } from './paging.js';
import type { License } from '../domain/license/license.js';
import { notFound } from '../domain/shared/esozError.js';
import type { PageOf } from '../readModels/paging.js';
import type { LicenseStore } from '../readModels/licenseStore.js';

export const listLicensesQuerySchema = z.object({
  id: z.string().min(1).optional(),
  license_number: z.string().min(1).optional(),
  type: z.string().min(1).optional(),
  is_primary: z
    .enum(['true', 'false'])
    .transform((value) => value === 'true')
    .optional(),
  page: pageNumber,
  page_size: pageSize(100),
});
export type ListLicensesQuery = z.infer<typeof listLicensesQuerySchema>;

export async function listLicenses(store: LicenseStore, legalEntityId: string, query: ListLicensesQuery): Promise<PageOf<License>> {
  const { page, page_size: pageSize, ...filters } = query;
  return store.search({ ...filters, legal_entity_id: legalEntityId, is_active: true }, { page, pageSize });
}

export async function getLicense(store: LicenseStore, legalEntityId: string, id: string): Promise<License> {
  const license = await store.get(id);
  if (!license || license.legal_entity_id !== legalEntityId) throw notFound('License was not found');
  return license;
}
