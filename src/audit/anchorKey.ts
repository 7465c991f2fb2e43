/**
 * The key that signs anchors: AUDIT_ANCHOR_KEY_FILE (a private JWK, ES256 or RS256), or on the embedded
 * default a development ES256 key generated under DATA_DIR/dev/audit like the other development keys
 * (its public half in jwks.json there: what an auditor passes as --anchors-key).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { z } from 'zod';
import { ensureDevSigningKey } from '../auth/devKeys.js';
import type { Config } from '../config.js';
import type { AnchorSigningKey } from './anchorRecord.js';

const privateJwkSchema = z.looseObject({
  kty: z.enum(['EC', 'RSA']),
  d: z.string().min(1),
  kid: z.string().min(1).optional(),
  alg: z.enum(['ES256', 'RS256']).optional(),
});

const PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth']);
export const publicPartOf = (jwk: JWK): JWK => Object.fromEntries(Object.entries(jwk).filter(([name]) => !PRIVATE_MEMBERS.has(name))) as JWK;

export type AnchorKeys = { signing: AnchorSigningKey; publicJwks: { keys: JWK[] } };

export async function loadAnchorKeys(config: Pick<Config, 'AUDIT_ANCHOR_KEY_FILE' | 'DATA_DIR'>): Promise<AnchorKeys> {
  if (!config.AUDIT_ANCHOR_KEY_FILE) {
    const dev = await ensureDevSigningKey(join(config.DATA_DIR, 'dev', 'audit'));
    return { signing: { privateJwk: dev.privateJwk, alg: 'ES256', kid: dev.kid }, publicJwks: { keys: [publicPartOf(dev.privateJwk)] } };
  }
  const parsed = privateJwkSchema.safeParse(JSON.parse(await readFile(config.AUDIT_ANCHOR_KEY_FILE, 'utf8')));
  if (!parsed.success) throw new Error(`AUDIT_ANCHOR_KEY_FILE is not a private EC (P-256) or RSA JWK`);
  const jwk = parsed.data as JWK;
  const alg = parsed.data.alg ?? (parsed.data.kty === 'EC' ? 'ES256' : 'RS256');
  const kid = parsed.data.kid ?? (await calculateJwkThumbprint(publicPartOf(jwk)));
  return { signing: { privateJwk: jwk, alg, kid }, publicJwks: { keys: [{ ...publicPartOf(jwk), kid, alg, use: 'sig' }] } };
}
