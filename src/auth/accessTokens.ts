/**
 * Access tokens (contract "Access tokens"): `Authorization: Bearer <JWT>` verified with jose against
 * the configured JWKS (file or URL), RS256/ES256 only; `iss` and `aud` when configured; `exp`
 * required and no further ahead than the maximum lifetime; `iat` not in the future and `nbf` honoured
 * (both within the clock skew). Every verification failure is the same 401 "Invalid access token" so
 * that callers cannot probe why a token was refused.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, createRemoteJWKSet, importJWK, jwtVerify } from 'jose';
import type { JWK, JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { accessDenied, missingScope } from '../domain/shared/esozError.js';

/** Only asymmetric algorithms: HMAC would need a shared secret, `none` has no signature at all. */
const ACCEPTED_ALGORITHMS = ['RS256', 'ES256'] as const;

/** A token living longer than this is refused unless configured otherwise (AUTH_MAX_TOKEN_LIFETIME_SECONDS). */
export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600;

/** The claims this system relies on; jose has already checked `exp`, `nbf` (and `iss`/`aud` when configured). */
const accessTokenClaimsSchema = z.object({
  sub: z.string().min(1),
  client_id: z.string().min(1),
  scope: z.string().optional(),
});
export type AccessTokenClaims = z.infer<typeof accessTokenClaimsSchema>;

/** The time claims checked after jose (jose rejects non-numeric ones itself). */
const timeClaimsSchema = z.object({ exp: z.number(), iat: z.number().optional() });

/** The claims mapped to the names the application uses. */
const principalSchema = accessTokenClaimsSchema.transform((claims) => ({
  userId: claims.sub,
  legalEntityId: claims.client_id,
  scopes: new Set((claims.scope ?? '').split(' ').filter((s) => s !== '')) as ReadonlySet<string>,
}));
export type Principal = z.infer<typeof principalSchema>;

export type TokenVerifierOptions = {
  /** A JWKS object (e.g. from {@link loadJwksFile}) or the URL of a remote JWKS. */
  jwks: { keys: JWK[] } | URL;
  /** When set, tokens must carry exactly this `iss`. */
  issuer?: string;
  /** When set, tokens must name this audience in `aud`. */
  audience?: string;
  /** Allowed difference between the issuer's clock and ours, for exp, nbf and iat. Default 0. */
  clockToleranceSeconds?: number;
  /** `exp` may be at most this far ahead of now (plus the tolerance). Default 24 h. */
  maxLifetimeSeconds?: number;
  /** Verified tokens remembered until they expire (least recently used beyond this); 0 = none. Default 10 000. */
  cacheSize?: number;
  /** Seconds since the epoch (tests). */
  now?: () => number;
};

export type TokenVerifier = {
  /** Resolves to the principal or rejects with accessDenied() (the jose error is its `cause`). */
  verify(authorizationHeader: string | undefined): Promise<Principal>;
};

// RFC 7235: the scheme is case-insensitive; a compact JWS has no whitespace.
const BEARER = /^Bearer +(\S+) *$/i;

const denied = (cause: unknown) => {
  const error = accessDenied();
  // Kept for the caller's log only: toBody() never renders it.
  error.cause = cause;
  return error;
};

/**
 * Verifying a token costs a signature check (about 0.17 ms of CPU); an MIS sends the same token with
 * every request. A verified token is remembered, keyed by its SHA-256, until its `exp` (plus the skew)
 * passes: every other rule (signature, alg, iss, aud, nbf, iat, lifetime) was checked once and cannot
 * turn false later, as time only moves on. Refused tokens are never remembered (a token not valid yet
 * is checked again next time). A key removed from a remote JWKS stops new tokens at once; tokens it
 * signed before stay valid until they expire.
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const tolerance = options.clockToleranceSeconds ?? 0;
  const maxLifetime = options.maxLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS;
  const cacheSize = options.cacheSize ?? 10_000;
  const nowSeconds = options.now ?? (() => Date.now() / 1000);
  const getKey: JWTVerifyGetKey =
    'keys' in options.jwks ? createLocalJWKSet({ keys: assertPublicKeys(options.jwks.keys, 'JWKS') }) : createRemoteJWKSet(options.jwks);
  // Insertion-ordered: the first key is the least recently used.
  const verified = new Map<string, { principal: Principal; exp: number }>();

  async function verifyToken(token: string): Promise<{ principal: Principal; exp: number }> {
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        algorithms: [...ACCEPTED_ALGORITHMS],
        requiredClaims: ['exp', 'sub', 'client_id'],
        ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
        ...(options.audience !== undefined ? { audience: options.audience } : {}),
        clockTolerance: tolerance,
        currentDate: new Date(nowSeconds() * 1000),
      }));
    } catch (error) {
      throw denied(error);
    }

    // A token that (almost) never expires is as good as a stolen password: bound its lifetime.
    const times = timeClaimsSchema.safeParse(payload);
    if (!times.success) throw denied(times.error);
    const now = Math.floor(nowSeconds());
    if (times.data.exp > now + maxLifetime + tolerance) throw denied(new Error(`exp is more than ${maxLifetime}s ahead`));
    // Issued "in the future" means a wrong clock or a forged token.
    if (times.data.iat !== undefined && times.data.iat > now + tolerance) throw denied(new Error('iat is in the future'));

    const principal = principalSchema.safeParse(payload);
    if (!principal.success) throw denied(principal.error);
    return { principal: principal.data, exp: times.data.exp };
  }

  return {
    async verify(authorizationHeader) {
      if (authorizationHeader === undefined) throw denied(new Error('no Authorization header'));
      const match = BEARER.exec(authorizationHeader);
      const token = match?.[1];
      if (token === undefined) throw denied(new Error('Authorization header is not "Bearer <token>"'));
      if (cacheSize === 0) return (await verifyToken(token)).principal;

      const key = createHash('sha256').update(token).digest('base64');
      const known = verified.get(key);
      if (known) {
        verified.delete(key);
        // jose's rule: expired once now - tolerance reaches exp.
        if (known.exp > nowSeconds() - tolerance) {
          verified.set(key, known);
          return known.principal;
        }
      }
      const fresh = await verifyToken(token);
      verified.set(key, fresh);
      if (verified.size > cacheSize) verified.delete(verified.keys().next().value!);
      return fresh.principal;
    },
  };
}

export function requireScope(principal: Principal, scope: string): void {
  if (!principal.scopes.has(scope)) throw missingScope(scope);
}

/** Members that only private or symmetric keys carry (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 9964). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'] as const;

const jwkSchema = z.union([
  z.looseObject({ kty: z.literal('RSA'), n: z.string().min(1), e: z.string().min(1) }),
  z.looseObject({ kty: z.literal('EC'), crv: z.literal('P-256'), x: z.string().min(1), y: z.string().min(1) }),
]);
const jwksSchema = z.object({ keys: z.array(z.unknown()).min(1) });

/** Throws when a key is not an RS256/ES256 public key; `label` names the source in the message. */
function assertPublicKeys(keys: readonly unknown[], label: string): JWK[] {
  return keys.map((key, index) => {
    const where = `${label}: key #${index}${isRecord(key) && typeof key.kid === 'string' ? ` (kid "${key.kid}")` : ''}`;
    if (!isRecord(key)) throw new Error(`${where} is not a JSON object`);
    const privateMembers = PRIVATE_MEMBERS.filter((member) => member in key);
    // A published JWKS must never hold secrets: refuse rather than silently strip them.
    if (privateMembers.length > 0 || key.kty === 'oct') {
      throw new Error(`${where} contains private key material (${privateMembers.join(', ') || 'kty "oct"'}); a JWKS must hold public keys only`);
    }
    const parsed = jwkSchema.safeParse(key);
    if (!parsed.success) {
      throw new Error(`${where} is not an RSA or EC P-256 public key: ${z.prettifyError(parsed.error)}`);
    }
    // Validated JSON data above; jose's JWK type is a closed set of optional string members.
    return parsed.data as JWK;
  });
}

/**
 * Reads `AUTH_JWKS_FILE`: JSON `{"keys": [...]}` of RSA or EC P-256 public keys.
 * Throws an Error naming the file when it is unreadable, not a JWKS, or holds private key material.
 */
export async function loadJwksFile(path: string): Promise<{ keys: JWK[] }> {
  const label = `JWKS file ${path}`;
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new Error(`${label} cannot be read as JSON: ${messageOf(error)}`, {
      cause: error,
    });
  }
  const jwks = jwksSchema.safeParse(json);
  if (!jwks.success) throw new Error(`${label} is not a JWKS ({"keys": [...]} with at least one key)`);
  const keys = assertPublicKeys(jwks.data.keys, label);
  // Import every key now so that a broken key fails at start-up, not on the first request.
  await Promise.all(
    keys.map(async (key, index) => {
      try {
        await importJWK(key, key.alg ?? (key.kty === 'RSA' ? 'RS256' : 'ES256'));
      } catch (error) {
        throw new Error(`${label}: key #${index} cannot be imported: ${messageOf(error)}`, { cause: error });
      }
    }),
  );
  return { keys };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Not `instanceof Error`: errors from Node core may come from another realm (jest VM contexts).
function messageOf(error: unknown): string {
  return isRecord(error) && typeof error.message === 'string' ? error.message : String(error);
}
