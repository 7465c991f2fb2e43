/**
 * One line of an exported history (NDJSON): an event with its stream, revision and metadata, but no
 * global position. Positions belong to one store (an xid pair on PostgreSQL, a commit/prepare pair on
 * EventStoreDB); the order of the lines is the order of the log, so a history moves between stores.
 */
import { z } from 'zod';
import type { EventToAppend, JsonObject, RecordedEvent } from '../eventStore/eventStore.js';
import { HASH_PATTERN } from '../eventStore/hashChain.js';

// The line came out of JSON.parse, so everything inside is JSON already: only the shape is checked
// (walking every value again would cost more than the whole load).
const jsonObject = z.custom<JsonObject>((value) => typeof value === 'object' && value !== null && !Array.isArray(value), 'must be a JSON object');

export const historyLineSchema = z.object({
  stream_name: z.string().min(1).max(500),
  revision: z.number().int().min(0),
  event_type: z.string().min(1).max(200),
  data: jsonObject,
  metadata: z.object({
    event_id: z.uuid(),
    correlation_id: z.string().min(1),
    causation_id: z.string().min(1).nullable(),
    user_id: z.string().nullable(),
    client_id: z.string().nullable(),
    occurred_at: z.iso.datetime({ offset: true }),
    schema_version: z.number().int().positive(),
  }),
  /** The event's link in its stream's hash chain (absent in files exported before the chain existed). */
  prev_hash: z.string().regex(HASH_PATTERN, 'must be 64 lower-case hex digits').optional(),
  hash: z.string().regex(HASH_PATTERN, 'must be 64 lower-case hex digits').optional(),
});
export type HistoryLine = z.infer<typeof historyLineSchema>;

export const toHistoryLine = (event: RecordedEvent): HistoryLine => ({
  stream_name: event.streamName,
  revision: Number(event.revision),
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
  ...(event.hash !== undefined && event.prevHash !== undefined ? { prev_hash: event.prevHash, hash: event.hash } : {}),
});

export const fromHistoryLine = (line: HistoryLine): EventToAppend & { streamName: string; revision: bigint } => ({
  streamName: line.stream_name,
  revision: BigInt(line.revision),
  type: line.event_type,
  data: line.data,
  metadata: {
    eventId: line.metadata.event_id,
    correlationId: line.metadata.correlation_id,
    causationId: line.metadata.causation_id,
    userId: line.metadata.user_id,
    clientId: line.metadata.client_id,
    occurredAt: line.metadata.occurred_at,
    schemaVersion: line.metadata.schema_version,
  },
});

/** A refused history file: the line at fault, or null when the refusal is about no line (a store that is not empty). */
export class HistoryFileError extends Error {
  constructor(
    readonly lineNumber: number | null,
    reason: string,
  ) {
    super(lineNumber === null ? reason : `line ${lineNumber}: ${reason}`);
    this.name = 'HistoryFileError';
  }
}
