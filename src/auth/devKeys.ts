/**
 * Development signing key for the embedded default: lets a local setup mint its own access tokens
 * and verify them through the same JWKS path as production (`AUTH_JWKS_FILE`). Not for production.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import type { JWK } from 'jose';
import { z } from 'zod';
import type { Config } from '../config.js';

const DEV_PRIVATE_KEY_FILE = 'dev-signing-key.jwk.json';
/** `iss` and `aud` required of tokens on the development key when AUTH_ISSUER / AUTH_AUDIENCE are unset. */
export const DEV_ISSUER = 'urn:esoz:dev-auth';
export const DEV_AUDIENCE = 'urn:esoz:device-dispense-registry';
const DEV_JWKS_FILE = 'jwks.json';

/**
 * The `iss` and `aud` access tokens must carry: the configured ones; with the development key, the
 * development defaults when unset, so that even the embedded default checks both.
 */
export function tokenAudience(
  config: Pick<Config, 'AUTH_ISSUER' | 'AUTH_AUDIENCE'>,
  devKey: boolean,
): { issuer: string | undefined; audience: string | undefined } {
  return {
    issuer: config.AUTH_ISSUER ?? (devKey ? DEV_ISSUER : undefined),
    audience: config.AUTH_AUDIENCE ?? (devKey ? DEV_AUDIENCE : undefined),
  };
}

export type DevSigningKey = { jwksPath: string; privateJwk: JWK; kid: string };

const privateEcJwkSchema = z.looseObject({
  kty: z.literal('EC'),
  crv: z.literal('P-256'),
  x: z.string().min(1),
  y: z.string().min(1),
  d: z.string().min(1),
  kid: z.string().min(1),
});

/** The public half as published in jwks.json. */
function publicJwk(privateJwk: z.infer<typeof privateEcJwkSchema>): JWK {
  const { kty, crv, x, y, kid } = privateJwk;
  return { kty, crv, x, y, kid, alg: 'ES256', use: 'sig' };
}

/**
 * Returns the ES256 development key kept in `dir`, generating it on first use: `dev-signing-key.jwk.json`
 * (private, mode 0o600) and `jwks.json` (public key only, for `AUTH_JWKS_FILE`).
 */
export async function ensureDevSigningKey(dir: string): Promise<DevSigningKey> {
  await mkdir(dir, { recursive: true });
  const privatePath = join(dir, DEV_PRIVATE_KEY_FILE);
  const jwksPath = join(dir, DEV_JWKS_FILE);

  const privateJwk = (await readPrivateKey(privatePath)) ?? (await createPrivateKey(privatePath));
  const publicKey = publicJwk(privateJwk);
  // Rewritten on every call so a deleted or stale jwks.json always matches the private key.
  const tmpPath = `${jwksPath}.${process.pid}.tmp`;
  await writeFile(tmpPath, `${JSON.stringify({ keys: [publicKey] }, null, 2)}\n`);
  await rename(tmpPath, jwksPath); // atomic: a concurrent reader never sees a half-written file
  return { jwksPath, privateJwk: { ...privateJwk, alg: 'ES256', use: 'sig' }, kid: privateJwk.kid };
}

async function readPrivateKey(path: string): Promise<z.infer<typeof privateEcJwkSchema> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (isErrnoException(error) && error.code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = privateEcJwkSchema.safeParse(safeJsonParse(text));
  if (!parsed.success) {
    throw new Error(`${path} is not an ES256 private JWK with kid; delete it to generate a new development key`);
  }
  return parsed.data;
}

async function createPrivateKey(path: string): Promise<z.infer<typeof privateEcJwkSchema>> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const exported = await exportJWK(privateKey);
  // RFC 7638 thumbprint: a stable kid derived from the public key itself.
  const kid = await calculateJwkThumbprint({ kty: exported.kty, crv: exported.crv, x: exported.x, y: exported.y });
  const jwk = privateEcJwkSchema.parse({ ...exported, kid, alg: 'ES256', use: 'sig' });
  try {
    // 'wx': never overwrite a key that a concurrent call has just written; 0o600: it is a secret.
    await writeFile(path, `${JSON.stringify(jwk, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if (isErrnoException(error) && error.code === 'EEXIST') {
      const existing = await readPrivateKey(path);
      if (existing) return existing;
    }
    throw error;
  }
  return jwk;
}

export type DevTokenClaims = {
  sub: string;
  client_id: string;
  scope: string;
  /** A jose duration such as '12h', or a number of seconds from now. Default '12h'. */
  expiresIn?: string | number;
  issuer?: string;
  audience?: string;
};

/** Signs an ES256 access token with the development key (kid header, iat, exp; iss and aud when given). */
export async function mintToken(privateJwk: JWK, claims: DevTokenClaims): Promise<string> {
  const key = await importJWK(privateJwk, 'ES256');
  const kid = privateJwk.kid ?? (await calculateJwkThumbprint(privateJwk));
  const now = Math.floor(Date.now() / 1000);
  const expiresIn = claims.expiresIn ?? '12h';
  const jwt = new SignJWT({ client_id: claims.client_id, scope: claims.scope })
    .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt(now)
    // jose reads a bare number as an absolute timestamp; here it means "seconds from now".
    .setExpirationTime(typeof expiresIn === 'number' ? now + expiresIn : expiresIn);
  if (claims.issuer !== undefined) jwt.setIssuer(claims.issuer);
  if (claims.audience !== undefined) jwt.setAudience(claims.audience);
  return jwt.sign(key);
}

function safeJsonParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// Not `instanceof Error`: under jest's VM contexts Node core errors come from another realm.
function isErrnoException(error: unknown): error is NodeJS.ErrnoException {
  return typeof error === 'object' && error !== null && 'code' in error;
}
