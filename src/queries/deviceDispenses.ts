/**
 * Device dispense reads, from the `device_dispenses` read model only: Get details, Search in a
 * patient's context, and the legal entity's search. A dispense of another legal entity is 404.
 */
import { z } from 'zod';
import { pageNumber, pageSize } from './paging.js';
import { deviceDispenseDocumentSchema, renderDeviceDispense, type RenderedDeviceDispense } from '../domain/deviceDispense/document.js';
import { isCalendarDate } from '../domain/shared/calendarDate.js';
import { notFound } from '../domain/shared/esozError.js';
import type { DeviceDispenseFilter, DeviceDispenseRecord, DeviceDispenseStore } from '../readModels/deviceDispenseStore.js';
import type { PageOf } from '../readModels/paging.js';

// The read models compare bounds as strings against ISO-8601 UTC values with milliseconds (…T10:00:00.000Z):
// a date-time bound is normalised to that form first, else `…T10:00:00Z` or `…T12:00:00+02:00` would compare
// wrongly with a stored `…T10:00:00.000Z` ('.' < 'Z'). A bare date stays as given (the store widens it to the day).
// A value that is no date at all (2024-13-45, 2024-02-30, T25:00) is a 422 instead of a silently wrong bound.
const dateOrDateTime = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?$/, { message: 'must be a date or a date-time', abort: true })
  .refine((value) => isCalendarDate(value) && !Number.isNaN(Date.parse(value)), 'must be a date or a date-time')
  .transform((value) => (value.length === 10 ? value : new Date(value).toISOString()));
const optionalText = z.string().min(1).optional();

/** Query parameters of both searches (openapi/device-dispense-search-*.json). */
export const searchDeviceDispensesQuerySchema = z.object({
  based_on: optionalText,
  location: optionalText,
  performer: optionalText,
  status: optionalText,
  when_handed_over_from: dateOrDateTime.optional(),
  when_handed_over_to: dateOrDateTime.optional(),
  part_of: optionalText,
  encounter: optionalText,
  context_episode_id: optionalText,
  origin_episode_id: optionalText,
  device_code: optionalText,
  device: optionalText,
  program: optionalText,
  performer_legal_entity: optionalText,
  inserted_at_from: dateOrDateTime.optional(),
  inserted_at_to: dateOrDateTime.optional(),
  page: pageNumber,
  page_size: pageSize(300),
});
export type SearchDeviceDispensesQuery = z.infer<typeof searchDeviceDispensesQuerySchema>;

const render = (record: DeviceDispenseRecord): RenderedDeviceDispense => renderDeviceDispense(deviceDispenseDocumentSchema.parse(record.document));

export async function getDeviceDispense(store: DeviceDispenseStore, legalEntityId: string, patientId: string, id: string): Promise<RenderedDeviceDispense> {
  const record = await store.get(id);
  if (!record || record.index.patient_id !== patientId || record.index.legal_entity_id !== legalEntityId) throw notFound();
  return render(record);
}

export async function searchDeviceDispenses(
  store: DeviceDispenseStore,
  legalEntityId: string,
  query: SearchDeviceDispensesQuery,
  patientId?: string,
): Promise<PageOf<RenderedDeviceDispense>> {
  // Only the token's legal entity's dispenses are visible; asking for another's finds nothing to show.
  if (query.performer_legal_entity !== undefined && query.performer_legal_entity !== legalEntityId) throw notFound();
  const { page, page_size: pageSize, performer_legal_entity: _le, ...filters } = query;
  const filter: DeviceDispenseFilter = { ...filters, legal_entity_id: legalEntityId, ...(patientId !== undefined ? { patient_id: patientId } : {}) };
  const result = await store.search(filter, { page, pageSize });
  return { items: result.items.map(render), total: result.total };
}
