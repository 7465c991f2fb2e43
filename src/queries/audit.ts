/**
 * Audit reads (scope audit:read: the token's legal entity; audit:read_all: everything, see
 * auditAccess.ts). Unlike the other queries they read the event store itself: an auditor sees the
 * history as recorded, and the state of an aggregate *as of* a moment by folding its events up to that
 * moment (by each event's occurred_at). What a reader may not see answers exactly as what does not exist.
 */
import { z } from 'zod';
import { pageNumber, pageSize } from './paging.js';
import { deviceDispenseDecider } from '../domain/deviceDispense/decider.js';
import { renderDeviceDispense } from '../domain/deviceDispense/document.js';
import { deviceDispenseStream, parseDeviceDispenseEvent } from '../domain/deviceDispense/events.js';
import { licenseDecider } from '../domain/license/decider.js';
import { legalEntityLicensesStream, parseLicenseEvent } from '../domain/license/events.js';
import { EsozError, notFound } from '../domain/shared/esozError.js';
import { readWholeStream, type EventStore, type RecordedEvent } from '../eventStore/eventStore.js';
import { toHistoryLine } from '../history/historyLine.js';
import type { LicenseStore } from '../readModels/licenseStore.js';
import { canRead, createStreamFilter, streamOwner, type AuditAccess } from './auditAccess.js';

/** A history line (the export's wire form) plus the event's position in this store. */
export const auditEventView = (event: RecordedEvent) => {
  const { stream_name, revision, event_type, data, metadata, prev_hash = null, hash = null } = toHistoryLine(event);
  return { stream_name, revision, position: event.position, event_type, data, metadata, prev_hash, hash };
};
export type AuditEvent = ReturnType<typeof auditEventView>;

export const streamEventsQuerySchema = z.object({
  page: pageNumber,
  page_size: pageSize(500),
});

const STREAM_NOT_FOUND = 'Stream not found';

export async function streamEvents(store: EventStore, access: AuditAccess, streamName: string, { page, page_size }: z.infer<typeof streamEventsQuerySchema>) {
  if (!canRead(access, access.kind === 'all' ? null : await streamOwner(store, streamName))) throw notFound(STREAM_NOT_FOUND);
  const events: AuditEvent[] = [];
  const window = { fromRevision: BigInt((page - 1) * page_size), maxCount: page_size };
  for await (const event of store.readStream(streamName, window)) events.push(auditEventView(event));
  // The stream's length: its last revision + 1 (read backwards would be cheaper; streams here are short).
  let total = 0;
  for await (const _ of store.readStream(streamName)) total += 1;
  if (total === 0) throw notFound(STREAM_NOT_FOUND);
  return { events, total };
}

export const historyQuerySchema = z.object({
  after: z.string().min(1).optional(),
  limit: pageSize(1000, 100),
});

const INVALID_CHECKPOINT = 'Invalid checkpoint';

/** A position of this store, each part within its type's range (the adapters' parsers check both). */
const isPosition = (store: EventStore, value: string) => {
  try {
    store.comparePositions(value, value); // throws on anything the adapter does not recognise
    return true;
  } catch {
    return false;
  }
};

/** Pages read from the global log while filtering for one legal entity. */
const SCAN_PAGE_SIZE = 500;

/**
 * The global log after a checkpoint (exclusive); `checkpoint` is where to continue from. Filtered for
 * one legal entity, the scan goes on until `limit` of its events are found or the log ends, and the
 * checkpoint is the last event *scanned*: the next page starts right after it, so nothing is skipped,
 * and a page shorter than `limit` still means the end of the log. (Walking the whole history costs one
 * scan of the log either way.)
 */
export async function history(store: EventStore, access: AuditAccess, { after, limit }: z.infer<typeof historyQuerySchema>) {
  if (after !== undefined && !isPosition(store, after))
    throw new EsozError(422, 'validation_failed', INVALID_CHECKPOINT, [
      { entry: '$.after', entry_type: 'query_parameter', rules: [{ rule: 'invalid', description: INVALID_CHECKPOINT, params: [] }] },
    ]);
  if (access.kind === 'all') {
    const events = await store.readAll({ after: after ?? null, maxCount: limit });
    return { events: events.map(auditEventView), checkpoint: events.length ? events[events.length - 1]!.position : (after ?? null) };
  }
  const readable = createStreamFilter(store, access);
  const found: RecordedEvent[] = [];
  let checkpoint = after ?? null;
  for (;;) {
    const page = await store.readAll({ after: checkpoint, maxCount: SCAN_PAGE_SIZE });
    // An empty page, not a short one, is the end: an adapter may drop system events from a page.
    if (page.length === 0) return { events: found.map(auditEventView), checkpoint };
    for (const event of page) {
      checkpoint = event.position;
      if (!(await readable(event))) continue;
      found.push(event);
      if (found.length === limit) return { events: found.map(auditEventView), checkpoint };
    }
  }
}

export const asOfQuerySchema = z.object({ as_of: z.iso.datetime({ offset: true }).optional() });

const upTo = (events: RecordedEvent[], asOf: string | undefined) =>
  asOf === undefined ? events : events.filter((e) => Date.parse(e.metadata.occurredAt) <= Date.parse(asOf));

const DISPENSE_NOT_THEN = 'Device dispense did not exist at that time';

export async function deviceDispenseAsOf(store: EventStore, access: AuditAccess, id: string, asOf: string | undefined) {
  const stream = deviceDispenseStream(id);
  if (!canRead(access, access.kind === 'all' ? null : await streamOwner(store, stream))) throw notFound(DISPENSE_NOT_THEN);
  const events = upTo(await readWholeStream(store, stream), asOf);
  const state = events.map(parseDeviceDispenseEvent).reduce(deviceDispenseDecider.evolve, deviceDispenseDecider.initialState());
  if (!state) throw notFound(DISPENSE_NOT_THEN);
  return { as_of: asOf ?? null, revision: Number(events[events.length - 1]!.revision), state: renderDeviceDispense(state) };
}

export async function licenseAsOf(store: EventStore, licenses: LicenseStore, access: AuditAccess, id: string, asOf: string | undefined) {
  // The licence's legal entity (its stream) is looked up in the read model; its state comes from the stream.
  const known = await licenses.get(id);
  if (!known || !canRead(access, known.legal_entity_id)) throw notFound('License was not found');
  const events = upTo(await readWholeStream(store, legalEntityLicensesStream(known.legal_entity_id)), asOf);
  const state = events.map(parseLicenseEvent).reduce(licenseDecider.evolve, licenseDecider.initialState());
  const license = state.licenses[id];
  if (!license) throw notFound('License did not exist at that time');
  return { as_of: asOf ?? null, state: license };
}
