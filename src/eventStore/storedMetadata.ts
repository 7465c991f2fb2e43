/**
 * Event metadata as stored (and on the wire): snake_case keys, the same as in history files and the
 * audit API; camelCase stays in code. Events are never rewritten, so history stored before this form
 * keeps its camelCase keys and is read in either form.
 */
import type { EventMetadata, JsonObject } from './eventStore.js';

export const toStoredMetadata = (metadata: EventMetadata): JsonObject => ({
  event_id: metadata.eventId,
  correlation_id: metadata.correlationId,
  causation_id: metadata.causationId,
  user_id: metadata.userId,
  client_id: metadata.clientId,
  occurred_at: metadata.occurredAt,
  schema_version: metadata.schemaVersion,
});

/** Not validated: events written by others keep whatever they carry (missing keys read as undefined). */
export function fromStoredMetadata(stored: unknown): EventMetadata {
  const value = (typeof stored === 'object' && stored !== null && !Array.isArray(stored) ? stored : {}) as Record<string, unknown>;
  const pick = (snake: string, camel: string) => (value[snake] !== undefined ? value[snake] : value[camel]);
  return {
    eventId: pick('event_id', 'eventId'),
    correlationId: pick('correlation_id', 'correlationId'),
    causationId: pick('causation_id', 'causationId'),
    userId: pick('user_id', 'userId'),
    clientId: pick('client_id', 'clientId'),
    occurredAt: pick('occurred_at', 'occurredAt'),
    schemaVersion: pick('schema_version', 'schemaVersion'),
  } as EventMetadata;
}

/** SQL for one metadata key of a stored row, whichever form the row has. */
export const storedMetadataKey = (snake: string, camel: string, asText = false) =>
  `coalesce(metadata${asText ? '->>' : '->'}'${snake}', metadata${asText ? '->>' : '->'}'${camel}')`;
