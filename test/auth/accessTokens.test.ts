import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { base64url, exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { createTokenVerifier, loadJwksFile, requireScope } from '../../src/auth/accessTokens.js';
import type { Principal } from '../../src/auth/accessTokens.js';
import { ensureDevSigningKey, mintToken } from '../../src/auth/devKeys.js';
import { EsozError } from '../../src/domain/shared/esozError.js';

const USER_ID = '7a5e2b51-4c6f-4d0e-9d1a-3b2c1f0e9a87';
const LEGAL_ENTITY_ID = '2d9f6c38-81b4-4f57-a6f0-5e4b3c2a1d09';
const SCOPE = 'device_dispense:read device_dispense:write';

type KeyPair = { privateKey: CryptoKey; publicJwk: JWK };

async function keyPair(alg: 'ES256' | 'RS256', kid: string): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

type TokenOptions = {
  alg?: 'ES256' | 'RS256' | 'RS384' | 'PS256';
  kid: string;
  exp?: number | null;
  iss?: string;
  aud?: string | string[];
  /** Seconds since the epoch; default now. */
  iat?: number;
  nbf?: number;
};

const nowSeconds = () => Math.floor(Date.now() / 1000);

function sign(
  key: CryptoKey | Uint8Array,
  { alg = 'ES256', kid, exp = nowSeconds() + 3600, iss, aud, iat, nbf }: TokenOptions,
  claims: Record<string, unknown> = { sub: USER_ID, client_id: LEGAL_ENTITY_ID, scope: SCOPE },
): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'JWT' }).setIssuedAt(iat ?? nowSeconds());
  if (exp !== null) jwt.setExpirationTime(exp);
  if (iss !== undefined) jwt.setIssuer(iss);
  if (aud !== undefined) jwt.setAudience(aud);
  if (nbf !== undefined) jwt.setNotBefore(nbf);
  return jwt.sign(key);
}

/** The EsozError that `promise` rejects with (fails the test if it resolves or throws something else). */
async function rejection(promise: Promise<unknown>): Promise<EsozError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(EsozError);
    return error as EsozError;
  }
  throw new Error('expected a rejection');
}

/** The uniform 401 for a refusal that is ours, not jose's: `reason` pins our cause's message. */
async function expectRefusedFor(promise: Promise<unknown>, reason: string): Promise<void> {
  const error = await rejection(promise);
  expect(error.cause).toMatchObject({ message: reason });
  expect(error.status).toBe(401);
  expect(error.toBody()).toEqual({ type: 'access_denied', message: 'Invalid access token' });
}

/** Asserts the uniform 401; `causeCode` pins the jose reason so a case cannot pass for the wrong one. */
async function expectInvalidToken(promise: Promise<unknown>, causeCode?: string): Promise<void> {
  const error = await rejection(promise);
  if (causeCode !== undefined) expect(error.cause).toMatchObject({ code: causeCode });
  expect(error.status).toBe(401);
  expect(error.type).toBe('access_denied');
  expect(error.message).toBe('Invalid access token');
  expect(error.toBody()).toEqual({ type: 'access_denied', message: 'Invalid access token' });
}

let es: KeyPair;
let rs: KeyPair;
let other: KeyPair;
let jwks: { keys: JWK[] };
let tmp: string;

beforeAll(async () => {
  es = await keyPair('ES256', 'es-key');
  rs = await keyPair('RS256', 'rs-key');
  // Same kid as the trusted ES key: a signature made by a key the JWKS does not hold.
  other = await keyPair('ES256', 'es-key');
  jwks = { keys: [es.publicJwk, rs.publicJwk] };
  tmp = await mkdtemp(join(tmpdir(), 'auth-test-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('createTokenVerifier', () => {
  it('accepts a good ES256 token and returns the principal', async () => {
    const verifier = createTokenVerifier({ jwks });
    const principal = await verifier.verify(`Bearer ${await sign(es.privateKey, { kid: 'es-key' })}`);
    expect(principal.userId).toBe(USER_ID);
    expect(principal.legalEntityId).toBe(LEGAL_ENTITY_ID);
    expect([...principal.scopes].sort()).toEqual(['device_dispense:read', 'device_dispense:write']);
  });

  it('accepts a good RS256 token', async () => {
    const verifier = createTokenVerifier({ jwks });
    const token = await sign(rs.privateKey, { alg: 'RS256', kid: 'rs-key' });
    await expect(verifier.verify(`Bearer ${token}`)).resolves.toMatchObject({ userId: USER_ID });
  });

  it('treats an absent scope claim as no scopes', async () => {
    const verifier = createTokenVerifier({ jwks });
    const token = await sign(es.privateKey, { kid: 'es-key' }, { sub: USER_ID, client_id: LEGAL_ENTITY_ID });
    expect((await verifier.verify(`Bearer ${token}`)).scopes.size).toBe(0);
  });

  it('refuses a missing Authorization header', async () => {
    await expectInvalidToken(createTokenVerifier({ jwks }).verify(undefined));
  });

  it('refuses a non-Bearer scheme', async () => {
    await expectInvalidToken(createTokenVerifier({ jwks }).verify('Basic xxx'));
  });

  it('refuses a Bearer header with garbage', async () => {
    const verifier = createTokenVerifier({ jwks });
    await expectInvalidToken(verifier.verify('Bearer not.a.jwt'));
    await expectInvalidToken(verifier.verify('Bearer'));
    await expectInvalidToken(verifier.verify('Bearer '));
  });

  it('refuses a token signed by another key and keeps the jose error only as cause', async () => {
    const error = await rejection(createTokenVerifier({ jwks }).verify(`Bearer ${await sign(other.privateKey, { kid: 'es-key' })}`));
    expect(error.status).toBe(401);
    expect(error.message).toBe('Invalid access token');
    expect(error.cause).toMatchObject({ code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
  });

  it('refuses an unknown kid', async () => {
    const token = await sign(other.privateKey, { kid: 'unknown-key' });
    await expectInvalidToken(createTokenVerifier({ jwks }).verify(`Bearer ${token}`), 'ERR_JWKS_NO_MATCHING_KEY');
  });

  it('refuses an expired token', async () => {
    const token = await sign(es.privateKey, { kid: 'es-key', exp: Math.floor(Date.now() / 1000) - 60 });
    await expectInvalidToken(createTokenVerifier({ jwks }).verify(`Bearer ${token}`), 'ERR_JWT_EXPIRED');
  });

  it('accepts a just-expired token within the configured clock tolerance', async () => {
    const token = await sign(es.privateKey, { kid: 'es-key', exp: Math.floor(Date.now() / 1000) - 5 });
    await expect(createTokenVerifier({ jwks, clockToleranceSeconds: 60 }).verify(`Bearer ${token}`)).resolves.toMatchObject({ userId: USER_ID });
  });

  it('refuses a token without exp', async () => {
    const token = await sign(es.privateKey, { kid: 'es-key', exp: null });
    await expectInvalidToken(createTokenVerifier({ jwks }).verify(`Bearer ${token}`), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
  });

  it('refuses an alg "none" token', async () => {
    const encode = (value: object) => base64url.encode(JSON.stringify(value));
    const token = `${encode({ alg: 'none', typ: 'JWT' })}.${encode({
      sub: USER_ID,
      client_id: LEGAL_ENTITY_ID,
      scope: SCOPE,
      exp: Math.floor(Date.now() / 1000) + 3600,
    })}.`;
    await expectInvalidToken(createTokenVerifier({ jwks }).verify(`Bearer ${token}`), 'ERR_JOSE_ALG_NOT_ALLOWED');
  });

  it('refuses an HS256 token signed with a secret', async () => {
    const secret = new TextEncoder().encode('a-shared-secret-that-is-long-enough-for-hs256');
    const token = new SignJWT({ sub: USER_ID, client_id: LEGAL_ENTITY_ID, scope: SCOPE })
      .setProtectedHeader({ alg: 'HS256', kid: 'es-key' })
      .setExpirationTime('1h');
    await expectInvalidToken(createTokenVerifier({ jwks }).verify(`Bearer ${await token.sign(secret)}`), 'ERR_JOSE_ALG_NOT_ALLOWED');
  });

  it('refuses a token without client_id', async () => {
    const token = await sign(es.privateKey, { kid: 'es-key' }, { sub: USER_ID, scope: SCOPE });
    await expectInvalidToken(createTokenVerifier({ jwks }).verify(`Bearer ${token}`), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
  });

  it('refuses an empty sub', async () => {
    const token = await sign(es.privateKey, { kid: 'es-key' }, { sub: '', client_id: LEGAL_ENTITY_ID });
    await expectInvalidToken(createTokenVerifier({ jwks }).verify(`Bearer ${token}`));
  });

  it('refuses a wrong issuer when an issuer is configured', async () => {
    const verifier = createTokenVerifier({ jwks, issuer: 'https://auth.example.test' });
    await expectInvalidToken(
      verifier.verify(`Bearer ${await sign(es.privateKey, { kid: 'es-key', iss: 'https://evil.example.test' })}`),
      'ERR_JWT_CLAIM_VALIDATION_FAILED',
    );
    await expectInvalidToken(verifier.verify(`Bearer ${await sign(es.privateKey, { kid: 'es-key' })}`));
    const good = await sign(es.privateKey, { kid: 'es-key', iss: 'https://auth.example.test' });
    await expect(verifier.verify(`Bearer ${good}`)).resolves.toMatchObject({ legalEntityId: LEGAL_ENTITY_ID });
  });

  it('refuses a wrong or missing audience when an audience is configured', async () => {
    const verifier = createTokenVerifier({ jwks, audience: 'urn:registry' });
    await expectInvalidToken(
      verifier.verify(`Bearer ${await sign(es.privateKey, { kid: 'es-key', aud: 'urn:another-service' })}`),
      'ERR_JWT_CLAIM_VALIDATION_FAILED',
    );
    await expectInvalidToken(verifier.verify(`Bearer ${await sign(es.privateKey, { kid: 'es-key' })}`), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
    const good = await sign(es.privateKey, { kid: 'es-key', aud: ['urn:another-service', 'urn:registry'] });
    await expect(verifier.verify(`Bearer ${good}`)).resolves.toMatchObject({ userId: USER_ID });
  });

  it('refuses a token whose exp is further ahead than the maximum lifetime (default 24 h)', async () => {
    const verifier = createTokenVerifier({ jwks, clockToleranceSeconds: 60 });
    const year9999 = Date.UTC(9999, 11, 31) / 1000;
    await expectRefusedFor(verifier.verify(`Bearer ${await sign(es.privateKey, { kid: 'es-key', exp: year9999 })}`), 'exp is more than 86400s ahead');
    const tooLong = await sign(es.privateKey, { kid: 'es-key', exp: nowSeconds() + 86400 + 600 });
    await expectRefusedFor(verifier.verify(`Bearer ${tooLong}`), 'exp is more than 86400s ahead');
    const fullDay = await sign(es.privateKey, { kid: 'es-key', exp: nowSeconds() + 86400 });
    await expect(verifier.verify(`Bearer ${fullDay}`)).resolves.toMatchObject({ userId: USER_ID });
  });

  it('uses the configured maximum lifetime', async () => {
    const verifier = createTokenVerifier({ jwks, maxLifetimeSeconds: 600 });
    await expectRefusedFor(verifier.verify(`Bearer ${await sign(es.privateKey, { kid: 'es-key', exp: nowSeconds() + 3600 })}`), 'exp is more than 600s ahead');
    await expect(verifier.verify(`Bearer ${await sign(es.privateKey, { kid: 'es-key', exp: nowSeconds() + 300 })}`)).resolves.toBeDefined();
  });

  it('refuses a token issued in the future beyond the clock skew, accepts one within it', async () => {
    const verifier = createTokenVerifier({ jwks, clockToleranceSeconds: 60 });
    await expectRefusedFor(verifier.verify(`Bearer ${await sign(es.privateKey, { kid: 'es-key', iat: nowSeconds() + 300 })}`), 'iat is in the future');
    const skewed = await sign(es.privateKey, { kid: 'es-key', iat: nowSeconds() + 30 });
    await expect(verifier.verify(`Bearer ${skewed}`)).resolves.toMatchObject({ userId: USER_ID });
  });

  it('honours nbf: refused before it (beyond the skew), accepted after it', async () => {
    const verifier = createTokenVerifier({ jwks, clockToleranceSeconds: 60 });
    await expectInvalidToken(
      verifier.verify(`Bearer ${await sign(es.privateKey, { kid: 'es-key', nbf: nowSeconds() + 600 })}`),
      'ERR_JWT_CLAIM_VALIDATION_FAILED',
    );
    const started = await sign(es.privateKey, { kid: 'es-key', nbf: nowSeconds() - 10 });
    await expect(verifier.verify(`Bearer ${started}`)).resolves.toMatchObject({ userId: USER_ID });
  });

  it('refuses RSA algorithms other than RS256 (RS384, PS256) even with a trusted RSA key', async () => {
    const verifier = createTokenVerifier({ jwks });
    for (const alg of ['RS384', 'PS256'] as const) {
      const { privateKey } = await generateKeyPair(alg);
      await expectInvalidToken(verifier.verify(`Bearer ${await sign(privateKey, { alg, kid: 'rs-key' })}`), 'ERR_JOSE_ALG_NOT_ALLOWED');
    }
  });

  it('refuses a JWKS object holding a private key', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const privateJwk = await exportJWK(privateKey);
    expect(() => createTokenVerifier({ jwks: { keys: [privateJwk] } })).toThrow(/private key material/);
  });

  it('verifies against a remote JWKS URL', async () => {
    const server = createServer((request, response) => {
      if (request.url === '/.well-known/jwks.json') {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify(jwks));
      } else {
        response.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const verifier = createTokenVerifier({ jwks: new URL(`http://127.0.0.1:${port}/.well-known/jwks.json`) });
      const principal = await verifier.verify(`Bearer ${await sign(es.privateKey, { kid: 'es-key' })}`);
      expect(principal.userId).toBe(USER_ID);
      await expectInvalidToken(verifier.verify(`Bearer ${await sign(other.privateKey, { kid: 'es-key' })}`), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('verified-token cache', () => {
  /** A verifier on a clock the test moves (seconds since the epoch). */
  const onClock = (start: number, options: { clockToleranceSeconds?: number; cacheSize?: number } = {}) => {
    const clock = { now: start };
    return { clock, verifier: createTokenVerifier({ jwks, ...options, now: () => clock.now }) };
  };

  it('a remembered token is refused once it expires (give or take the skew), as an unremembered one', async () => {
    const start = nowSeconds();
    const { clock, verifier } = onClock(start, { clockToleranceSeconds: 10 });
    const token = await sign(es.privateKey, { kid: 'es-key', iat: start, exp: start + 60 });
    await expect(verifier.verify(`Bearer ${token}`)).resolves.toMatchObject({ userId: USER_ID });
    clock.now = start + 69;
    await expect(verifier.verify(`Bearer ${token}`)).resolves.toMatchObject({ userId: USER_ID });
    clock.now = start + 70;
    await expectInvalidToken(verifier.verify(`Bearer ${token}`), 'ERR_JWT_EXPIRED');
    // Still refused on the next call: a refused token is never remembered.
    await expectInvalidToken(verifier.verify(`Bearer ${token}`), 'ERR_JWT_EXPIRED');
  });

  it('a token refused for nbf is not remembered: accepted once nbf is reached', async () => {
    const start = nowSeconds();
    const { clock, verifier } = onClock(start);
    const token = await sign(es.privateKey, { kid: 'es-key', iat: start, nbf: start + 30, exp: start + 600 });
    await expectInvalidToken(verifier.verify(`Bearer ${token}`), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
    clock.now = start + 30;
    await expect(verifier.verify(`Bearer ${token}`)).resolves.toMatchObject({ userId: USER_ID });
  });

  it('a token that differs in one character is verified on its own (keyed by the whole token)', async () => {
    const { verifier } = onClock(nowSeconds());
    const token = await sign(es.privateKey, { kid: 'es-key' });
    await expect(verifier.verify(`Bearer ${token}`)).resolves.toMatchObject({ userId: USER_ID });
    const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    await expectInvalidToken(verifier.verify(`Bearer ${tampered}`), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });

  it('holds at most cacheSize tokens: the least recently used one is verified again', async () => {
    const start = nowSeconds();
    const { clock, verifier } = onClock(start, { cacheSize: 2 });
    const tokens = await Promise.all([1, 2, 3].map((n) => sign(es.privateKey, { kid: 'es-key', iat: start, exp: start + 60 + n })));
    for (const token of tokens) await verifier.verify(`Bearer ${token}`);
    // With the clock set back before their iat, a remembered token is still answered from memory, and a
    // token verified again is refused ("iat is in the future"): the first one was evicted, the last kept.
    clock.now = start - 1000;
    await expectRefusedFor(verifier.verify(`Bearer ${tokens[0]}`), 'iat is in the future');
    await expect(verifier.verify(`Bearer ${tokens[2]}`)).resolves.toMatchObject({ userId: USER_ID });
  });
});

describe('requireScope', () => {
  const principal: Principal = {
    userId: USER_ID,
    legalEntityId: LEGAL_ENTITY_ID,
    scopes: new Set(['device_dispense:read']),
  };

  it('passes when the scope is granted', () => {
    expect(() => requireScope(principal, 'device_dispense:read')).not.toThrow();
  });

  it('throws 403 naming the missing scope', async () => {
    const error = await rejection(Promise.resolve().then(() => requireScope(principal, 'device_dispense:stop')));
    expect(error.status).toBe(403);
    expect(error.type).toBe('forbidden');
    expect(error.message).toBe('Your scope does not allow to access this resource. Missing allowances: device_dispense:stop');
  });
});

describe('loadJwksFile', () => {
  it('loads a public JWKS', async () => {
    const path = join(tmp, 'public-jwks.json');
    await writeFile(path, JSON.stringify(jwks));
    const loaded = await loadJwksFile(path);
    expect(loaded.keys.map((key) => key.kid)).toEqual(['es-key', 'rs-key']);
    const token = await sign(es.privateKey, { kid: 'es-key' });
    await expect(createTokenVerifier({ jwks: loaded }).verify(`Bearer ${token}`)).resolves.toBeDefined();
  });

  it('rejects a file containing a private key ("d" member), naming the file', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const path = join(tmp, 'private-jwks.json');
    await writeFile(path, JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid: 'leaked' }] }));
    await expect(loadJwksFile(path)).rejects.toThrow(path);
    await expect(loadJwksFile(path)).rejects.toThrow(/private key material \(d\)/);
  });

  it('rejects a file that is not a JWKS, naming the file', async () => {
    const notJson = join(tmp, 'not-json.json');
    await writeFile(notJson, 'not json');
    await expect(loadJwksFile(notJson)).rejects.toThrow(notJson);
    const noKeys = join(tmp, 'no-keys.json');
    await writeFile(noKeys, JSON.stringify({ keys: [] }));
    await expect(loadJwksFile(noKeys)).rejects.toThrow(noKeys);
    const missing = join(tmp, 'missing.json');
    await expect(loadJwksFile(missing)).rejects.toThrow(missing);
  });
});

describe('development signing key', () => {
  it('is generated once and reloaded later, and its tokens verify against jwks.json', async () => {
    const dir = join(tmp, 'dev', 'keys');
    const first = await ensureDevSigningKey(dir);
    const second = await ensureDevSigningKey(dir);
    expect(second.kid).toBe(first.kid);
    expect(second.privateJwk).toEqual(first.privateJwk);

    expect((await stat(join(dir, 'dev-signing-key.jwk.json'))).mode & 0o777).toBe(0o600);
    const published: unknown = JSON.parse(await readFile(first.jwksPath, 'utf8'));
    expect(published).toEqual({
      keys: [{ kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String), kid: first.kid, alg: 'ES256', use: 'sig' }],
    });

    const verifier = createTokenVerifier({ jwks: await loadJwksFile(first.jwksPath), issuer: 'dev' });
    const token = await mintToken(first.privateJwk, {
      sub: USER_ID,
      client_id: LEGAL_ENTITY_ID,
      scope: 'device_dispense:read',
      issuer: 'dev',
    });
    const principal = await verifier.verify(`Bearer ${token}`);
    expect(principal).toEqual({ userId: USER_ID, legalEntityId: LEGAL_ENTITY_ID, scopes: new Set(['device_dispense:read']) });

    // A number is seconds from now: a negative one gives an already expired token.
    const expired = await mintToken(first.privateJwk, {
      sub: USER_ID,
      client_id: LEGAL_ENTITY_ID,
      scope: '',
      issuer: 'dev',
      expiresIn: -60,
    });
    await expectInvalidToken(verifier.verify(`Bearer ${expired}`), 'ERR_JWT_EXPIRED');
  });
});
