/**
 * GET /api/audit/streams/{stream}/proof (issue 16): a stream's events with their hash-chain links and
 * the latest anchor with the Merkle path of the stream's head in it, so an auditor can check one
 * dispense's history offline with a short script (examples/verify-proof.mjs): the chain from the
 * genesis hash, the anchored head in the chain, the path to the signed root, the anchor's signature.
 * Readable exactly as the stream's events are (own legal entity, or audit:read_all).
 */
import { latestAnchorProof } from '../audit/anchors.js';
import type { Database } from '../database/database.js';
import { notFound } from '../domain/shared/esozError.js';
import { readWholeStream, type EventStore } from '../eventStore/eventStore.js';
import { auditEventView } from './audit.js';
import { canRead, streamOwner, type AuditAccess } from './auditAccess.js';
import { anchorDataSchema } from '../audit/anchorRecord.js';

export async function streamProof(store: EventStore, database: Database, access: AuditAccess, streamName: string) {
  if (!canRead(access, access.kind === 'all' ? null : await streamOwner(store, streamName))) throw notFound('Stream not found');
  const events = await readWholeStream(store, streamName);
  if (events.length === 0) throw notFound('Stream not found');
  const proof = await latestAnchorProof(database, store, streamName);
  const anchor = proof && anchorDataSchema.safeParse(proof.anchor.data);
  return {
    stream_name: streamName,
    events: events.map(auditEventView),
    // The anchor's fields as signed, its event's own link, and where this stream's head sits in its tree;
    // its `changed` list (every stream that moved before it) is left out.
    anchor:
      proof && anchor?.success
        ? {
            event_id: proof.anchor.metadata.eventId,
            revision: Number(proof.anchor.revision),
            prev_hash: proof.anchor.prevHash ?? null,
            hash: proof.anchor.hash ?? null,
            covers: anchor.data.covers,
            streams: anchor.data.streams,
            merkle_root: anchor.data.merkle_root,
            anchored_at: anchor.data.anchored_at,
            prev_anchor_hash: anchor.data.prev_anchor_hash,
            jws: anchor.data.jws,
            leaf: proof.leaf,
            path: proof.path,
          }
        : null,
    /** Revisions after the anchored head: chained, but not under a signed anchor yet. */
    unanchored_from: proof ? (proof.leaf.revision + 1 < events.length ? proof.leaf.revision + 1 : null) : 0,
  };
}
