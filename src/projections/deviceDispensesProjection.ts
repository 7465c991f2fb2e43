/**
 * Builds the `device_dispenses` read model: folds each dispense's events with the domain's evolve
 * (the same fold the commands use) and stores the document with its search index. A record carries
 * the stream revision it reflects, so re-applying a batch is a no-op.
 */
import { deviceDispenseDecider } from '../domain/deviceDispense/decider.js';
import { deviceDispenseDocumentSchema, referencedId, type DeviceDispenseDocument } from '../domain/deviceDispense/document.js';
import { DEVICE_DISPENSE_EVENT_TYPES, DEVICE_DISPENSE_STREAM_PREFIX, parseDeviceDispenseEvent } from '../domain/deviceDispense/events.js';
import type { JsonObject, RecordedEvent } from '../eventStore/eventStore.js';
import type { DeviceDispenseIndex, DeviceDispenseRecord, DeviceDispenseStore } from '../readModels/deviceDispenseStore.js';
import type { Projection } from './projection.js';
import { applying } from './poison.js';

export const DEVICE_DISPENSES_PROJECTION = 'device_dispenses';

export function indexOf(document: DeviceDispenseDocument): DeviceDispenseIndex {
  return {
    patient_id: document.subject.identifier.value,
    legal_entity_id: document.performer_legal_entity.identifier.value,
    status: document.status,
    based_on: referencedId(document.based_on),
    location: referencedId(document.location),
    performer: referencedId(document.performer),
    program: referencedId(document.program),
    // Not recorded by this registry's methods (encounter data packages are out of scope).
    part_of: null,
    encounter: null,
    context_episode_id: null,
    origin_episode_id: null,
    devices: document.details.flatMap((d) => (d.device ? [d.device.identifier.value] : [])),
    device_codes: [...new Set([...document.device_classification_types, ...document.details.flatMap((d) => d.device_code?.coding.map((c) => c.code) ?? [])])],
    when_handed_over: document.when_handed_over ? new Date(document.when_handed_over).toISOString() : null,
    inserted_at: new Date(document.inserted_at).toISOString(),
  };
}

const isDeviceDispenseEvent = (e: RecordedEvent) => e.streamName.startsWith(DEVICE_DISPENSE_STREAM_PREFIX) && DEVICE_DISPENSE_EVENT_TYPES.has(e.type);

export function createDeviceDispensesProjection(store: DeviceDispenseStore, name = DEVICE_DISPENSES_PROJECTION): Projection {
  const openShadow = store.openShadow?.bind(store);
  return {
    name,
    streamPrefixes: [DEVICE_DISPENSE_STREAM_PREFIX],
    ...(openShadow && {
      async shadow(purpose) {
        const { store: shadowStore, table } = await openShadow(name, purpose);
        return { projection: createDeviceDispensesProjection(shadowStore, table.projection), table };
      },
    }),
    readCheckpoint: () => store.readCheckpoint(name),

    relevant: isDeviceDispenseEvent,

    async handle(events, { lazy, ...checkpoint }) {
      const relevant = events.filter(isDeviceDispenseEvent);
      const ids = [...new Set(relevant.map((e) => e.streamName.slice(DEVICE_DISPENSE_STREAM_PREFIX.length)))];
      const stored = await store.getMany(ids);
      // A stored document is parsed only when an event is folded onto it: live, the commands have
      // written most rows inline already, and parsing each just to skip it was most of this pass.
      const working = new Map(
        ids.map((id) => {
          const record = stored.get(id);
          return [id, { document: null as DeviceDispenseDocument | null, raw: record?.document, revision: record?.revision ?? -1, changed: false }];
        }),
      );
      for (const event of relevant) {
        const entry = working.get(event.streamName.slice(DEVICE_DISPENSE_STREAM_PREFIX.length))!;
        if (Number(event.revision) <= entry.revision) continue; // already in the read model
        // Whatever throws here is this event's: a poison event (the runner records it as a dead letter).
        applying(name, event, () => {
          if (entry.raw !== undefined) {
            entry.document = deviceDispenseDocumentSchema.parse(entry.raw);
            entry.raw = undefined;
          }
          entry.document = deviceDispenseDecider.evolve(entry.document, parseDeviceDispenseEvent(event));
          // The index is the document's after this event: one it cannot be indexed by is poison too.
          if (entry.document) indexOf(entry.document);
        });
        entry.revision = Number(event.revision);
        entry.changed = true;
      }
      const records: DeviceDispenseRecord[] = [];
      for (const [id, { document, revision, changed }] of working)
        if (changed && document) records.push({ id, revision, index: indexOf(document), document: document as unknown as JsonObject });
      // Written inline with their append already (revision guard): nothing to do but a checkpoint the runner keeps.
      if (records.length === 0 && lazy) return false;
      await store.applyBatch(records, { projection: name, ...checkpoint });
      return true;
    },

    reset: () => store.reset(name),
  };
}
