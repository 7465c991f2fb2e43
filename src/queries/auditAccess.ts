/**
 * Who may read which part of the history. `audit:read` reads the streams of the token's legal entity
 * only: its device dispenses (the dispense's legal entity, from its creation event) and its licence
 * stream. `audit:read_all` (the national auditor) reads everything, including streams that belong to
 * no single legal entity (a device request's dispensing). The operator CLI reads the store directly.
 */
import { z } from 'zod';
import type { Principal } from '../auth/accessTokens.js';
import { AUDIT_READ_ALL } from '../auth/scopes.js';
import { DEVICE_DISPENSE_STREAM_PREFIX } from '../domain/deviceDispense/events.js';
import { LICENSES_STREAM_PREFIX } from '../domain/license/events.js';
import { missingScope } from '../domain/shared/esozError.js';
import type { EventStore, RecordedEvent } from '../eventStore/eventStore.js';

const AUDIT_READ = 'audit:read';

export type AuditAccess = { kind: 'all' } | { kind: 'legal_entity'; legalEntityId: string };

/** audit:read_all → everything; audit:read → the token's legal entity; neither → 403 naming audit:read. */
export function auditAccessOf(principal: Principal): AuditAccess {
  if (principal.scopes.has(AUDIT_READ_ALL)) return { kind: 'all' };
  if (principal.scopes.has(AUDIT_READ)) return { kind: 'legal_entity', legalEntityId: principal.legalEntityId };
  throw missingScope(AUDIT_READ);
}

/** Only what ownership needs from a creation event; the full schema is the decider's business. */
const createdOwnerSchema = z.object({
  dispense: z.object({ performer_legal_entity: z.object({ identifier: z.object({ value: z.string() }) }) }),
});

/** The legal entity a dispense's creation event names, or null for any other event. */
function ownerFromCreation(event: Pick<RecordedEvent, 'type' | 'data'>): string | null {
  if (event.type !== 'DeviceDispenseCreated') return null;
  const parsed = createdOwnerSchema.safeParse(event.data);
  return parsed.success ? parsed.data.dispense.performer_legal_entity.identifier.value : null;
}

/** The legal entity a stream belongs to, or null when it belongs to none (read_all only). */
export async function streamOwner(store: EventStore, streamName: string): Promise<string | null> {
  if (streamName.startsWith(LICENSES_STREAM_PREFIX)) return streamName.slice(LICENSES_STREAM_PREFIX.length) || null;
  if (!streamName.startsWith(DEVICE_DISPENSE_STREAM_PREFIX)) return null;
  for await (const first of store.readStream(streamName, { maxCount: 1 })) return ownerFromCreation(first);
  return null;
}

export const canRead = (access: AuditAccess, owner: string | null): boolean => access.kind === 'all' || (owner !== null && owner === access.legalEntityId);

/** Streams whose owner is remembered during one scan; beyond it the memory starts afresh (bounded). */
const OWNER_CACHE_SIZE = 10_000;

/** Whether `access` may read an event's stream; one lookup per stream while it is remembered. */
export function createStreamFilter(store: EventStore, access: AuditAccess): (event: RecordedEvent) => Promise<boolean> {
  const owners = new Map<string, Promise<string | null>>();
  return async (event) => {
    if (access.kind === 'all') return true;
    let owner = owners.get(event.streamName);
    if (owner === undefined) {
      if (owners.size >= OWNER_CACHE_SIZE) owners.clear();
      // The creation event itself names the owner: no read needed.
      owner =
        event.revision === 0n && event.type === 'DeviceDispenseCreated' ? Promise.resolve(ownerFromCreation(event)) : streamOwner(store, event.streamName);
      owners.set(event.streamName, owner);
    }
    return canRead(access, await owner);
  };
}
