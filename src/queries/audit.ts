/**
 * Audit reads (scope audit:read). Unlike the other queries they read the event store itself: an
 * auditor sees the history as recorded, and the state of an aggregate *as of* a moment by folding its
 * events up to that moment (by each event's occurred_at).
 */
import { z } from 'zod';
import { deviceDispenseDecider } from '../domain/deviceDispense/decider.js';
import { renderDeviceDispense } from '../domain/deviceDispense/document.js';
import { deviceDispenseStream, parseDeviceDispenseEvent } from '../domain/deviceDispense/events.js';
import { licenseDecider } from '../domain/license/decider.js';
import { legalEntityLicensesStream, parseLicenseEvent } from '../domain/license/events.js';
import { notFound, unprocessable } from '../domain/shared/esozError.js';
import { readWholeStream, type EventStore, type RecordedEvent } from '../eventStore/eventStore.js';
import type { LicenseStore } from '../readModels/licenseStore.js';

export const auditEventView = (event: RecordedEvent) => ({
  stream_name: event.streamName,
  revision: Number(event.revision),
  position: event.position,
  event_type: event.type,
  data: event.data,
  metadata: {
    event_id: event.metadata.eventId,
    correlation_id: event.metadata.correlationId,
    causation_id: event.metadata.causationId,
    user_id: event.metadata.userId,
    client_id: event.metadata.clientId,
    occurred_at: event.metadata.occurredAt,
    schema_version: event.metadata.schemaVersion,
  },
});
export type AuditEvent = ReturnType<typeof auditEventView>;

export const streamEventsQuerySchema = z.object({
  page: z.coerce.number().int().min(1).default(1),
  page_size: z.coerce.number().int().min(1).max(500).default(50),
});

export async function streamEvents(store: EventStore, streamName: string, { page, page_size }: z.infer<typeof streamEventsQuerySchema>) {
  const events: AuditEvent[] = [];
  for await (const event of store.readStream(streamName, { fromRevision: BigInt((page - 1) * page_size), maxCount: page_size })) events.push(auditEventView(event));
  // The stream's length: its last revision + 1 (read backwards would be cheaper; streams here are short).
  let total = 0;
  for await (const _ of store.readStream(streamName)) total += 1;
  if (total === 0) throw notFound('Stream not found');
  return { events, total };
}

export const historyQuerySchema = z.object({
  after: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const isPosition = (store: EventStore, value: string) => {
  try {
    store.comparePositions(value, value); // throws on anything the adapter does not recognise
    return true;
  } catch {
    return false;
  }
};

/** The global log after a checkpoint (exclusive); `checkpoint` is where to continue from. */
export async function history(store: EventStore, { after, limit }: z.infer<typeof historyQuerySchema>) {
  if (after !== undefined && !isPosition(store, after)) throw unprocessable('Invalid checkpoint', '$.after');
  const events = await store.readAll({ after: after ?? null, maxCount: limit });
  return { events: events.map(auditEventView), checkpoint: events.length ? events[events.length - 1]!.position : (after ?? null) };
}

export const asOfQuerySchema = z.object({ as_of: z.iso.datetime({ offset: true }).optional() });

const upTo = (events: RecordedEvent[], asOf: string | undefined) =>
  asOf === undefined ? events : events.filter((e) => Date.parse(e.metadata.occurredAt) <= Date.parse(asOf));

export async function deviceDispenseAsOf(store: EventStore, id: string, asOf: string | undefined) {
  const events = upTo(await readWholeStream(store, deviceDispenseStream(id)), asOf);
  const state = events.map(parseDeviceDispenseEvent).reduce(deviceDispenseDecider.evolve, deviceDispenseDecider.initialState());
  if (!state) throw notFound('Device dispense did not exist at that time');
  return { as_of: asOf ?? null, revision: Number(events[events.length - 1]!.revision), state: renderDeviceDispense(state) };
}

export async function licenseAsOf(store: EventStore, licenses: LicenseStore, id: string, asOf: string | undefined) {
  // The licence's legal entity (its stream) is looked up in the read model; its state comes from the stream.
  const known = await licenses.get(id);
  if (!known) throw notFound('License was not found');
  const events = upTo(await readWholeStream(store, legalEntityLicensesStream(known.legal_entity_id)), asOf);
  const state = events.map(parseLicenseEvent).reduce(licenseDecider.evolve, licenseDecider.initialState());
  const license = state.licenses[id];
  if (!license) throw notFound('License did not exist at that time');
  return { as_of: asOf ?? null, state: license };
}
