/**
 * What `cli import` requires of each event beyond the line's shape: that a projection can apply it.
 * The stream must belong to one of the registry's aggregates (or be the audit stream), the type must be
 * one of that aggregate's event types, and the data must pass the type's zod schema, the same schemas
 * the projections parse with (src/domain/eventCatalogue.ts). Otherwise the file is refused, naming
 * the line, before anything is written.
 */
import { ANCHOR_EVENT_TYPE, AUDIT_STREAM, anchorDataSchema } from '../audit/anchorRecord.js';
import { DOMAIN_EVENT_FAMILIES, type EventFamily } from '../domain/eventCatalogue.js';
import { z } from 'zod';

/** The reason an event is refused, or null. */
export type EventCheck = (event: { stream_name: string; event_type: string; data: unknown }) => string | null;

const AUDIT_FAMILY: EventFamily = {
  name: 'audit',
  streamPrefix: AUDIT_STREAM,
  types: new Set([ANCHOR_EVENT_TYPE]),
  schema: z.object({ type: z.literal(ANCHOR_EVENT_TYPE), data: anchorDataSchema }),
};

const familyOf = (stream: string, families: readonly EventFamily[]) =>
  stream === AUDIT_STREAM ? AUDIT_FAMILY : families.find((f) => stream.startsWith(f.streamPrefix) && stream.length > f.streamPrefix.length);

export function eventCheck(families: readonly EventFamily[] = DOMAIN_EVENT_FAMILIES): EventCheck {
  return ({ stream_name, event_type, data }) => {
    const family = familyOf(stream_name, families);
    if (!family)
      return `stream ${stream_name} belongs to no aggregate of this registry (streams start with ${[...families.map((f) => f.streamPrefix), AUDIT_STREAM].join(', ')})`;
    if (!family.types.has(event_type)) return `unknown event type ${event_type} for stream ${stream_name} (one of ${[...family.types].join(', ')})`;
    const parsed = family.schema.safeParse({ type: event_type, data });
    if (parsed.success) return null;
    const issue = parsed.error.issues[0]!;
    return `${event_type}: ${issue.path.join('.') || 'data'}: ${issue.message}`;
  };
}

/** The registry's check (the CLI's). */
export const domainEventCheck: EventCheck = eventCheck();

/**
 * No check of the events: for the event store's own tests, whose streams belong to no aggregate (the
 * store's mechanics, hash chain and order, do not depend on the domain). Never used by the CLI.
 */
export const anyEvent: EventCheck = () => null;
