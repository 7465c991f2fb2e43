/**
 * Derives StatusChangeEvents from the device dispense events (never emitted by a command handler):
 * one per change of a dispense's status, none when the status did not change. They go into the local
 * event-manager log (an outbox) in the same transaction as the checkpoint, so each is derived exactly
 * once; delivery to EVENT_MANAGER_URL happens from that log (src/eventManager/delivery.ts).
 */
import { writesAsCtes, type Database } from '../database/database.js';
import { STATUS_AFTER } from '../domain/deviceDispense/decider.js';
import { z } from 'zod';
import { v5 as uuidv5 } from 'uuid';
import { DEVICE_DISPENSE_EVENT_TYPES, DEVICE_DISPENSE_STREAM_PREFIX, type DeviceDispenseEventType } from '../domain/deviceDispense/events.js';
import { entityStatusTableDdl, eventManagerSchema, type StatusChangeEvent } from './eventManagerLog.js';
import { createShadowTable } from '../readModels/shadowTables.js';
import { checkpointsSchema, checkpointStored, checkpointWrite, deleteCheckpoint, readCheckpoint, storeCheckpoint } from '../readModels/checkpoints.js';
import type { Projection } from '../projections/projection.js';
import { applying } from '../projections/poison.js';
import type { RecordedEvent } from '../eventStore/eventStore.js';

export const STATUS_CHANGE_EVENTS_PROJECTION = 'status_change_events';

// Only who and when are read here; the whole event is validated by the device_dispenses projection
// (parsing every creation's document twice made this projection a replay's bottleneck).
const actorSchema = z.object({ at: z.string(), by: z.string() });
const completedRequestSchema = z.object({ device_request_completed: z.string().optional() });
/** Namespace of the DeviceRequest StatusChangeEvents' ids (uuid v5 of the completion event's id). */
const DEVICE_REQUEST_NAMESPACE = '6f0c2f3e-5b3a-4c1e-9a7d-2b8e4f1d0c11';

const isDeviceDispenseEvent = (e: RecordedEvent) => e.streamName.startsWith(DEVICE_DISPENSE_STREAM_PREFIX) && DEVICE_DISPENSE_EVENT_TYPES.has(e.type);

export async function createStatusChangeEventsProjection(
  database: Database,
  name = STATUS_CHANGE_EVENTS_PROJECTION,
  statusTable = 'event_manager_entity_status',
): Promise<Projection> {
  await database.migrate('projection_checkpoints', checkpointsSchema);
  await database.migrate('event_manager', eventManagerSchema);
  return {
    name,
    streamPrefixes: [DEVICE_DISPENSE_STREAM_PREFIX],
    // Blue/green over the status table; the log itself is shared (entries are keyed by the source
    // event's id, so a rebuild beside the live projection never adds one twice).
    async shadow(purpose) {
      const table = await createShadowTable(database, {
        live: statusTable,
        projection: name,
        purpose,
        tableDdl: entityStatusTableDdl,
        comparedAs: (t) => `to_jsonb(${t}.status)`,
        differs: 'l.status <> s.status',
      });
      return { projection: await createStatusChangeEventsProjection(database, table.projection, table.table), table };
    },
    readCheckpoint: () => readCheckpoint(database.pool, name),

    relevant: isDeviceDispenseEvent,

    async handle(events, { lazy, ...checkpoint }) {
      const relevant = events.filter(isDeviceDispenseEvent);
      if (relevant.length === 0 && lazy) return false;
      const update = { projection: name, ...checkpoint };
      await database.withTransaction(async (client) => {
        if (relevant.length > 0) {
          // Only a stream whose first event here is not its first can have a status stored already. A
          // rebuild reads whole streams, so it asks for none: on its fresh, never-analyzed table the
          // lookup was a full scan per page, 45 of a 1M-event rebuild's 48 s.
          const firstSeen = new Map<string, bigint>();
          for (const e of relevant) if (!firstSeen.has(e.streamName)) firstSeen.set(e.streamName, e.revision);
          const ids = [...firstSeen].filter(([, revision]) => revision > 0n).map(([stream]) => stream.slice(DEVICE_DISPENSE_STREAM_PREFIX.length));
          const { rows } =
            ids.length === 0
              ? { rows: [] }
              : await client.query<{ entity_id: string; status: string }>(
                  `select entity_id, status from ${statusTable} where entity_type = 'DeviceDispense' and entity_id = any($1::text[])`,
                  [ids],
                );
          const last = new Map(rows.map((r) => [r.entity_id, r.status]));
          const derived: StatusChangeEvent[] = [];
          for (const event of relevant) {
            const entityId = event.streamName.slice(DEVICE_DISPENSE_STREAM_PREFIX.length);
            const status = STATUS_AFTER[event.type as DeviceDispenseEventType];
            const actor = applying(name, event, () => actorSchema.parse(event.data));
            if (status === last.get(entityId)) continue;
            last.set(entityId, status);
            derived.push({
              id: event.metadata.eventId,
              event_type: 'StatusChangeEvent',
              entity_type: 'DeviceDispense',
              entity_id: entityId,
              properties: { status: { new_value: status } },
              event_time: actor.at,
              changed_by: actor.by,
            });
            // "StatusChangeEvent for DD and related Device Request" (spec §1.3.2): its id derived from the
            // event's, so a rebuild derives the same one and the log keeps it once.
            const completedRequest = event.type === 'DeviceDispenseCompleted' ? completedRequestSchema.parse(event.data).device_request_completed : undefined;
            if (completedRequest)
              derived.push({
                id: uuidv5(`${event.metadata.eventId}/DeviceRequest`, DEVICE_REQUEST_NAMESPACE),
                event_type: 'StatusChangeEvent',
                entity_type: 'DeviceRequest',
                entity_id: completedRequest,
                properties: { status: { new_value: 'COMPLETED' } },
                event_time: actor.at,
                changed_by: actor.by,
              });
          }
          if (derived.length > 0) {
            // The log entries, the statuses and the checkpoint as one statement (one round trip, not three).
            const values: unknown[] = [];
            const writes = writesAsCtes(
              [
                {
                  text: `insert into event_manager_log (id, entity_type, entity_id, payload)
                         select (p->>'id')::uuid, p->>'entity_type', p->>'entity_id', p from jsonb_array_elements($1::jsonb) as t(p)
                         on conflict (id) do nothing`,
                  values: [JSON.stringify(derived)],
                },
                {
                  text: `insert into ${statusTable} (entity_type, entity_id, status)
                         select 'DeviceDispense', e.id, e.status from unnest($1::text[], $2::text[]) as e(id, status)
                         on conflict (entity_type, entity_id) do update set status = excluded.status`,
                  values: [[...last.keys()], [...last.values()]],
                },
                checkpointWrite(update),
              ],
              values,
            );
            const { rows: moved } = await client.query<{ n: number }>(`with ${writes.join(', ')} select (select count(*) from w2)::int as n`, values);
            await checkpointStored(client, update, moved[0]!.n);
            return;
          }
        }
        await storeCheckpoint(client, update);
      });
    },

    async reset() {
      // The log is what was (or will be) sent: a rebuild re-derives it, and entries already in the
      // log keep their delivery state (same ids: the receiver deduplicates by id anyway).
      await database.withTransaction(async (client) => {
        await client.query(`delete from ${statusTable}`);
        await deleteCheckpoint(client, name);
      });
    },
  };
}
