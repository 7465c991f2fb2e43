/** A test token issuer: a real ES256 key whose public half the server trusts via a JWKS. */
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { v4 as uuidv4 } from 'uuid';

/** The claims a test token carries; iat defaults to now, exp to `expiresIn` from now. */
export type TestTokenClaims = { sub: string; client_id: string; scope: string } & Partial<{
  iss: string;
  aud: string | string[];
  iat: number;
  nbf: number;
  exp: number;
}>;

export type TokenIssuer = {
  jwks: { keys: JWK[] };
  token(claims: TestTokenClaims, options?: { expiresIn?: string | number }): Promise<string>;
};

export async function createTokenIssuer(): Promise<TokenIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const kid = uuidv4();
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  return {
    jwks: { keys: [jwk] },
    token: (claims, { expiresIn = '1h' } = {}) =>
      new SignJWT({ ...claims })
        .setProtectedHeader({ alg: 'ES256', kid })
        .setIssuedAt(claims.iat ?? Math.floor(Date.now() / 1000))
        .setExpirationTime(claims.exp ?? (typeof expiresIn === 'number' ? Math.floor(Date.now() / 1000) + expiresIn : expiresIn))
        .sign(privateKey),
  };
}

const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** An unsigned token (`alg: none`) with the given claims. */
export const unsignedToken = (claims: object) => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ ...claims, exp: Math.floor(Date.now() / 1000) + 3600 })}.`;
