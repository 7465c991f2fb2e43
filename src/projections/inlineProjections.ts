/**
 * Inline projections (as Emmett and Marten run them): the read-model rows a command's events produce,
 * written in the append's transaction, so a job is done the moment it commits. Only the
 * `device_dispenses` table, and only where it lives in the event store's database. Each row carries
 * the stream revision it reflects, and the async projection passing the same events later writes
 * nothing (its revision guard), so both paths stay idempotent and a rebuild replays everything.
 */
import type { DeviceDispenseState } from '../domain/deviceDispense/decider.js';
import { DEVICE_DISPENSE_STREAM_PREFIX } from '../domain/deviceDispense/events.js';
import type { AppendedRevision, JsonObject, TransactionalWrite } from '../eventStore/eventStore.js';
import type { DeviceDispenseRecord, DeviceDispenseStore } from '../readModels/deviceDispenseStore.js';
import { indexOf } from './deviceDispensesProjection.js';

/** An appended stream and, for a command's own stream, the state its decider folded after the events. */
export type InlineAppend = { streamName: string; state?: unknown };
export type InlineProjections = (appends: readonly InlineAppend[], revisions: readonly AppendedRevision[]) => TransactionalWrite[];

/** Null when the read model cannot be written in the event store's transaction (MongoDB). */
export function createInlineProjections(deviceDispenses: DeviceDispenseStore): InlineProjections | null {
  if (!deviceDispenses.inlineWrite) return null;
  const write = deviceDispenses.inlineWrite.bind(deviceDispenses);
  return (appends, revisions) => {
    const records: DeviceDispenseRecord[] = [];
    appends.forEach((append, i) => {
      if (!append.streamName.startsWith(DEVICE_DISPENSE_STREAM_PREFIX) || append.state === undefined) return;
      // A dispense stream's state is what deviceDispenseDecider folded (commandHandler passes it through untyped).
      const document = append.state as DeviceDispenseState;
      if (!document) return;
      const id = append.streamName.slice(DEVICE_DISPENSE_STREAM_PREFIX.length);
      records.push({ id, revision: Number(revisions[i]!.nextExpectedRevision), index: indexOf(document), document: document as unknown as JsonObject });
    });
    return records.length > 0 ? [write(records)] : [];
  };
}
