/**
 * Verification of `signed_data` (contract: "Digitally signed requests"): a compact JWS whose protected
 * header carries `x5c` (signer certificate first, then intermediates) and `alg` ES256 | RS256.
 * Checks, in this order: shape → chain up to a trusted CA → validity at `now` → signature.
 * Every failure is a 400 request_malformed, as in ЕСОЗ, with the validator's message.
 */
import { X509Certificate } from 'node:crypto';
import { compactVerify } from 'jose';
import { badRequest, type EsozError } from '../domain/shared/esozError.js';
import { findJsonProblem } from '../domain/shared/jsonText.js';
import { oneLine } from './trustStore.js';

export type VerifiedContent = {
  payload: Record<string, unknown>;
  /** Digits of the subject `serialNumber` "TINUA-<digits>", or null (the caller answers 422 "Invalid drfo"). */
  drfo: string | null;
  /** subject: one-line DN ("CN=…, serialNumber=…"); serialNumber: the certificate serial (hex). */
  signer: { subject: string; serialNumber: string };
};

const SIGNED_CONTENT_MESSAGES = {
  invalid: 'Invalid signed content',
  untrusted: 'Signer certificate is not trusted',
  expired: 'Signer certificate is expired or not yet valid',
  badSignature: 'Signature is invalid',
} as const;

const SIGNED_CONTENT_ALGORITHMS = ['ES256', 'RS256'] as const;
export type SignedContentAlgorithm = (typeof SIGNED_CONTENT_ALGORITHMS)[number];

/** Long enough for any real qualified-signature chain; bounds the work an attacker can ask for. */
const MAX_CHAIN_LENGTH = 10;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const DRFO = /^TINUA-(\d+)$/;

const invalid = (): EsozError => badRequest(SIGNED_CONTENT_MESSAGES.invalid);

export async function verifySignedContent(signedData: unknown, trusted: X509Certificate[], now: Date): Promise<VerifiedContent> {
  if (typeof signedData !== 'string') throw invalid();
  const parts = signedData.split('.');
  // Exactly three non-empty segments: an empty signature segment is an unsigned JWS.
  if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) throw invalid();
  const [headerSegment = '', payloadSegment = ''] = parts;

  const header = decodeJsonSegment(headerSegment);
  if (!isPlainObject(header)) throw invalid();
  const alg = header['alg'];
  if (!isSupportedAlgorithm(alg)) throw invalid();
  // `b64: false` changes what is signed and `crit` demands extensions we do not implement.
  if ('crit' in header || 'b64' in header) throw invalid();
  const x5c = header['x5c'];
  if (!Array.isArray(x5c) || x5c.length === 0 || x5c.length > MAX_CHAIN_LENGTH) throw invalid();

  const payload = decodeJsonSegment(payloadSegment);
  // The payload is stored in events: text PostgreSQL refuses, or absurd nesting, is no valid content.
  if (!isPlainObject(payload) || findJsonProblem(payload, 'json_data_property') !== null) throw invalid();

  const chain = x5c.map(parseX5cEntry);
  const anchor = findTrustAnchor(chain, trusted);
  if (!anchor) throw badRequest(SIGNED_CONTENT_MESSAGES.untrusted);

  const toCheck = chain.some((cert) => cert.raw.equals(anchor.raw)) ? chain : [...chain, anchor];
  if (!toCheck.every((cert) => isValidAt(cert, now))) throw badRequest(SIGNED_CONTENT_MESSAGES.expired);

  const signerCert = chain[0] as X509Certificate;
  try {
    // `algorithms` pins the header's alg, so a key/alg mismatch fails here instead of being negotiated.
    await compactVerify(signedData, signerCert.publicKey, { algorithms: [alg] });
  } catch {
    throw badRequest(SIGNED_CONTENT_MESSAGES.badSignature);
  }

  return {
    payload,
    drfo: drfoOf(signerCert),
    signer: { subject: oneLine(signerCert.subject), serialNumber: signerCert.serialNumber },
  };
}

/** DRFO digits from the subject serialNumber (2.5.4.5) "TINUA-<digits>"; null when absent, malformed or repeated. */
export function drfoOf(cert: X509Certificate): string | null {
  // The legacy object is built from the DN entries themselves, so a CN containing "\nserialNumber=…"
  // cannot forge the attribute the way parsing the rendered `subject` string could.
  const value = cert.toLegacyObject().subject?.['serialNumber'];
  if (typeof value !== 'string') return null;
  return DRFO.exec(value)?.[1] ?? null;
}

function parseX5cEntry(entry: unknown): X509Certificate {
  if (typeof entry !== 'string' || !BASE64.test(entry)) throw invalid();
  try {
    return new X509Certificate(Buffer.from(entry, 'base64'));
  } catch {
    throw invalid();
  }
}

/**
 * Each certificate must be issued by the next one; the last must be a trusted CA or be issued by one.
 * Returns the trusted CA that anchors the chain, or null.
 */
function findTrustAnchor(chain: X509Certificate[], trusted: X509Certificate[]): X509Certificate | null {
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!isIssuedBy(chain[i] as X509Certificate, chain[i + 1] as X509Certificate)) return null;
  }
  const last = chain[chain.length - 1] as X509Certificate;
  const included = trusted.find((ca) => ca.ca && ca.raw.equals(last.raw));
  return included ?? trusted.find((ca) => isIssuedBy(last, ca)) ?? null;
}

function isIssuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  // checkIssued compares names (and AKID/key usage); verify proves the issuer's key signed it.
  return issuer.ca && cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

function isValidAt(cert: X509Certificate, now: Date): boolean {
  // Node 20 has no validFromDate; its "Jan  1 00:00:00 2040 GMT" strings parse with Date.
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  const at = now.getTime();
  return Number.isFinite(from) && Number.isFinite(to) && from <= at && at <= to;
}

function decodeJsonSegment(segment: string): unknown {
  try {
    // fatal: malformed UTF-8 is malformed content, not something to repair with U+FFFD.
    const text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(segment, 'base64url'));
    return JSON.parse(text) as unknown;
  } catch {
    throw invalid();
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSupportedAlgorithm(value: unknown): value is SignedContentAlgorithm {
  return typeof value === 'string' && (SIGNED_CONTENT_ALGORITHMS as readonly string[]).includes(value);
}
