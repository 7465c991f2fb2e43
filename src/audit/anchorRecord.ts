/**
 * What an anchor is: an event of the audit stream whose data says which part of the global log it
 * covers (the first `event_count` events in log order, the last of them `last_event_id`), the Merkle
 * root over every stream's head at that point, the time, and the previous anchor's hash, all signed as a
 * compact JWS (ES256 or RS256) whose payload is the RFC 8785 form of those fields. `changed` lists the
 * heads that moved since the previous anchor, so a verifier can name the stream that differs.
 */
import { compactVerify, createLocalJWKSet, importJWK, type JWK, type JWTVerifyGetKey, CompactSign } from 'jose';
import { z } from 'zod';
import { fastCanonicalJson, HASH_PATTERN } from '../eventStore/hashChain.js';
import type { JsonObject } from '../eventStore/eventStore.js';

export const AUDIT_STREAM = 'audit-anchors';
export const ANCHOR_EVENT_TYPE = 'HistoryAnchored';
const JWS_TYPE = 'esoz-history-anchor+jws';

const hex = z.string().regex(HASH_PATTERN);
export const signedAnchorSchema = z.object({
  version: z.literal(1),
  covers: z.object({ event_count: z.number().int().min(1), last_event_id: z.string(), position: z.string() }),
  streams: z.number().int().min(0),
  merkle_root: hex,
  anchored_at: z.string(),
  prev_anchor_hash: hex.nullable(),
});
export type SignedAnchor = z.infer<typeof signedAnchorSchema>;

export const anchorDataSchema = signedAnchorSchema.extend({
  changed: z.array(z.tuple([z.string(), z.number().int().min(0), hex])),
  jws: z.string(),
});
export type AnchorData = z.infer<typeof anchorDataSchema>;

export const signedPartOf = ({ version, covers, streams, merkle_root, anchored_at, prev_anchor_hash }: SignedAnchor): SignedAnchor => ({
  version,
  covers,
  streams,
  merkle_root,
  anchored_at,
  prev_anchor_hash,
});

export type AnchorSigningKey = { privateJwk: JWK; alg: 'ES256' | 'RS256'; kid: string };

export async function signAnchor(anchor: SignedAnchor, key: AnchorSigningKey): Promise<string> {
  const payload = new TextEncoder().encode(fastCanonicalJson(signedPartOf(anchor) as unknown as JsonObject));
  return new CompactSign(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: JWS_TYPE }).sign(await importJWK(key.privateJwk, key.alg));
}

/** Public keys for anchor signatures: one JWK or a JWKS ({"keys": [...]}) as parsed JSON. */
export function anchorKeyResolver(keys: JWK | { keys: JWK[] }): JWTVerifyGetKey {
  return createLocalJWKSet('keys' in keys && Array.isArray(keys.keys) ? (keys as { keys: JWK[] }) : { keys: [keys as JWK] });
}

/** The anchor's JWS payload as signed (not verified), or null when it is not a JWS of an anchor. */
export function decodeAnchorJws(jws: string): SignedAnchor | null {
  const parts = jws.split('.');
  if (parts.length !== 3) return null;
  try {
    const parsed = signedAnchorSchema.safeParse(JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Why the anchor's signature or signed payload does not hold, or null when it does. */
export async function checkAnchorSignature(anchor: AnchorData, keys: JWTVerifyGetKey | null): Promise<string | null> {
  const signed = decodeAnchorJws(anchor.jws);
  if (!signed) return 'its jws is not a signed anchor';
  if (fastCanonicalJson(signed as unknown as JsonObject) !== fastCanonicalJson(signedPartOf(anchor) as unknown as JsonObject))
    return 'its fields differ from what its jws signed';
  if (!keys) return null;
  try {
    const { protectedHeader } = await compactVerify(anchor.jws, keys, { algorithms: ['ES256', 'RS256'] });
    if (protectedHeader.typ !== JWS_TYPE) return `its jws has type ${String(protectedHeader.typ)}`;
  } catch (error) {
    return `its signature does not verify (${(error as Error).message})`;
  }
  return null;
}
