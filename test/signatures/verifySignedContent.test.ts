import { describe, expect, it, beforeAll, afterAll } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactSign } from 'jose';
import { EsozError } from '../../src/domain/shared/esozError.js';
import {
  createCertificateAuthority,
  ensureDevPki,
  issueIntermediateAuthority,
  issueSignerCertificate,
  loadSigner,
  signPayload,
  type CertificateAuthority,
  type Signer,
} from '../../src/signatures/devPki.js';
import { loadTrustedCAs } from '../../src/signatures/trustStore.js';
import { verifySignedContent } from '../../src/signatures/verifySignedContent.js';

const TAX_ID = '3067305998';
const DAY = 86_400_000;
const now = new Date();
const payload = { device_dispense: { id: 'a2b1c3d4-0000-4000-8000-000000000001', status: 'COMPLETED' }, n: 1 };

let root: CertificateAuthority;
let trusted: X509Certificate[];
let es256: Signer;
let rs256: Signer;

const b64url = (value: string | Uint8Array) => Buffer.from(value).toString('base64url');
const x5cOf = (signer: Signer) => signer.chainPem.map((pem) => new X509Certificate(pem).raw.toString('base64'));

async function expectRejected(promise: Promise<unknown>, message: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EsozError);
  const { status, type, message: actual } = error as EsozError;
  expect({ status, type, message: actual }).toEqual({ status: 400, type: 'request_malformed', message });
}

beforeAll(async () => {
  root = await createCertificateAuthority({ commonName: 'Test Root CA' });
  trusted = loadTrustedCAs(root.certificatePem);
  es256 = await issueSignerCertificate(root, { taxId: TAX_ID, commonName: 'Тестовий Підписант' });
  // RSA key generation is the slow part of the suite: once.
  rs256 = await issueSignerCertificate(root, { taxId: '1234567890', keyAlgorithm: 'RS256' });
});

describe('verifySignedContent: valid signatures', () => {
  it('accepts an ES256 signature and returns payload, drfo and signer', async () => {
    const result = await verifySignedContent(await signPayload(payload, es256), trusted, now);
    expect(result.payload).toEqual(payload);
    expect(result.drfo).toBe(TAX_ID);
    expect(result.signer).toEqual({
      subject: `CN=Тестовий Підписант, serialNumber=TINUA-${TAX_ID}`,
      serialNumber: es256.certificate.serialNumber,
    });
  });

  it('accepts an RS256 signature', async () => {
    const result = await verifySignedContent(await signPayload(payload, rs256), trusted, now);
    expect(result.payload).toEqual(payload);
    expect(result.drfo).toBe('1234567890');
  });

  it('accepts a chain signer → intermediate → trusted root', async () => {
    const intermediate = await issueIntermediateAuthority(root);
    const signer = await issueSignerCertificate(intermediate, { taxId: TAX_ID });
    expect(signer.chainPem).toHaveLength(2);
    const result = await verifySignedContent(await signPayload(payload, signer), trusted, now);
    expect(result.drfo).toBe(TAX_ID);
  });

  it('accepts a chain that includes the trusted root itself', async () => {
    const jws = await signPayload(payload, es256, [root.certificatePem]);
    expect((await verifySignedContent(jws, trusted, now)).drfo).toBe(TAX_ID);
  });

  it('returns drfo null when the subject has no serialNumber', async () => {
    const signer = await issueSignerCertificate(root, { taxId: TAX_ID, serialNumberAttribute: null });
    const result = await verifySignedContent(await signPayload(payload, signer), trusted, now);
    expect(result.drfo).toBeNull();
    expect(result.payload).toEqual(payload);
  });

  it('returns drfo null when serialNumber is not TINUA-<digits>', async () => {
    const signer = await issueSignerCertificate(root, { taxId: TAX_ID, serialNumberAttribute: 'PASUA-АА123456' });
    expect((await verifySignedContent(await signPayload(payload, signer), trusted, now)).drfo).toBeNull();
  });
});

describe('verifySignedContent: Invalid signed content', () => {
  const message = 'Invalid signed content';

  it.each([
    ['undefined', undefined],
    ['a number', 42],
    ['garbage', 'garbage'],
    ['an object', { signed_data: 'x' }],
    ['two segments', 'eyJhbGciOiJFUzI1NiJ9.e30'],
  ])('rejects %s', async (_label, value) => {
    await expectRejected(verifySignedContent(value, trusted, now), message);
  });

  it('rejects alg none (unsigned)', async () => {
    const jws = `${b64url(JSON.stringify({ alg: 'none', x5c: x5cOf(es256) }))}.${b64url(JSON.stringify(payload))}.`;
    await expectRejected(verifySignedContent(jws, trusted, now), message);
  });

  it('rejects alg none even with a signature segment', async () => {
    const valid = (await signPayload(payload, es256)).split('.');
    const jws = [b64url(JSON.stringify({ alg: 'none', x5c: x5cOf(es256) })), valid[1], valid[2]].join('.');
    await expectRejected(verifySignedContent(jws, trusted, now), message);
  });

  it('rejects HS256 (HMAC)', async () => {
    const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ alg: 'HS256', x5c: x5cOf(es256) })
      .sign(new TextEncoder().encode('a-shared-secret-of-at-least-32-bytes!'));
    await expectRejected(verifySignedContent(jws, trusted, now), message);
  });

  it('rejects a header without x5c', async () => {
    const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader({ alg: 'ES256' }).sign(es256.privateKey);
    await expectRejected(verifySignedContent(jws, trusted, now), message);
  });

  it('rejects a header that is not JSON', async () => {
    const valid = (await signPayload(payload, es256)).split('.');
    await expectRejected(verifySignedContent([b64url('{alg:'), valid[1], valid[2]].join('.'), trusted, now), message);
  });

  it('rejects a payload that is a JSON array', async () => {
    const jws = await new CompactSign(new TextEncoder().encode('[1,2,3]')).setProtectedHeader({ alg: 'ES256', x5c: x5cOf(es256) }).sign(es256.privateKey);
    await expectRejected(verifySignedContent(jws, trusted, now), message);
  });

  it.each([
    ['a NUL', '{"payment_id": "R\\u0000"}'],
    ['a lone surrogate', '{"note": "\\ud800"}'],
    ['a NUL in a key', '{"a\\u0000": 1}'],
    ['nesting 40 levels deep', `{"a": ${'['.repeat(40)}${']'.repeat(40)}}`],
  ])('rejects a validly signed payload with %s (no store could hold it)', async (_name, text) => {
    const jws = await new CompactSign(new TextEncoder().encode(text)).setProtectedHeader({ alg: 'ES256', x5c: x5cOf(es256) }).sign(es256.privateKey);
    await expectRejected(verifySignedContent(jws, trusted, now), message);
  });

  it('rejects an x5c entry that is not a certificate', async () => {
    const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ alg: 'ES256', x5c: [Buffer.from('not a certificate').toString('base64')] })
      .sign(es256.privateKey);
    await expectRejected(verifySignedContent(jws, trusted, now), message);
  });
});

describe('verifySignedContent: Signer certificate is not trusted', () => {
  const message = 'Signer certificate is not trusted';

  it('rejects a signer from another CA', async () => {
    const other = await createCertificateAuthority({ commonName: 'Test Root CA' });
    const signer = await issueSignerCertificate(other, { taxId: TAX_ID });
    await expectRejected(verifySignedContent(await signPayload(payload, signer), trusted, now), message);
  });

  it('rejects an untrusted root sent along in x5c', async () => {
    const other = await createCertificateAuthority();
    const signer = await issueSignerCertificate(other, { taxId: TAX_ID });
    const jws = await signPayload(payload, signer, [other.certificatePem]);
    await expectRejected(verifySignedContent(jws, trusted, now), message);
  });

  it('rejects a chain whose intermediate is missing from x5c', async () => {
    const intermediate = await issueIntermediateAuthority(root);
    const signer = await issueSignerCertificate(intermediate, { taxId: TAX_ID });
    const withoutIntermediate: Signer = { ...signer, chainPem: [signer.certificatePem] };
    await expectRejected(verifySignedContent(await signPayload(payload, withoutIntermediate), trusted, now), message);
  });

  it('rejects a certificate "issued" by a non-CA signer certificate', async () => {
    const leafAsCa: CertificateAuthority = {
      certificatePem: es256.certificatePem,
      certificate: es256.certificate,
      privateKey: es256.privateKey,
      intermediatesPem: [es256.certificatePem],
    };
    const forged = await issueSignerCertificate(leafAsCa, { taxId: '1111111111' });
    await expectRejected(verifySignedContent(await signPayload(payload, forged), trusted, now), message);
  });
});

describe('verifySignedContent: Signer certificate is expired or not yet valid', () => {
  const message = 'Signer certificate is expired or not yet valid';

  it('rejects an expired signer certificate', async () => {
    const signer = await issueSignerCertificate(root, {
      taxId: TAX_ID,
      notBefore: new Date(now.getTime() - 400 * DAY),
      notAfter: new Date(now.getTime() - DAY),
    });
    await expectRejected(verifySignedContent(await signPayload(payload, signer), trusted, now), message);
  });

  it('rejects a signer certificate that is not yet valid', async () => {
    const signer = await issueSignerCertificate(root, {
      taxId: TAX_ID,
      notBefore: new Date(now.getTime() + DAY),
      notAfter: new Date(now.getTime() + 400 * DAY),
    });
    await expectRejected(verifySignedContent(await signPayload(payload, signer), trusted, now), message);
  });

  it('rejects a chain whose intermediate has expired', async () => {
    const intermediate = await issueIntermediateAuthority(root, {
      notBefore: new Date(now.getTime() - 400 * DAY),
      notAfter: new Date(now.getTime() - DAY),
    });
    const signer = await issueSignerCertificate(intermediate, { taxId: TAX_ID });
    await expectRejected(verifySignedContent(await signPayload(payload, signer), trusted, now), message);
  });

  it('judges validity at the given `now`', async () => {
    const jws = await signPayload(payload, es256);
    await expectRejected(verifySignedContent(jws, trusted, new Date(now.getTime() + 5 * 365 * DAY)), message);
  });
});

describe('verifySignedContent: Signature is invalid', () => {
  const message = 'Signature is invalid';

  it('rejects a payload swapped after signing', async () => {
    const [header, , signature] = (await signPayload(payload, es256)).split('.');
    const [, otherPayload] = (await signPayload({ ...payload, n: 2 }, es256)).split('.');
    await expectRejected(verifySignedContent([header, otherPayload, signature].join('.'), trusted, now), message);
  });

  it('rejects a signature made by a key other than the certificate’s', async () => {
    const other = await issueSignerCertificate(root, { taxId: TAX_ID });
    const impostor: Signer = { ...es256, privateKey: other.privateKey };
    await expectRejected(verifySignedContent(await signPayload(payload, impostor), trusted, now), message);
  });

  it('rejects alg ES256 over an RSA certificate', async () => {
    const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ alg: 'ES256', x5c: x5cOf(rs256) })
      .sign(es256.privateKey);
    await expectRejected(verifySignedContent(jws, trusted, now), message);
  });
});

describe('trust store', () => {
  it('loads a bundle of CAs', async () => {
    const other = await createCertificateAuthority();
    expect(loadTrustedCAs(`# bundle\n${root.certificatePem}\n${other.certificatePem}`)).toHaveLength(2);
  });

  it('rejects a bundle with no certificate', () => {
    expect(() => loadTrustedCAs('')).toThrow('Trusted CA bundle holds no certificate');
  });

  it('rejects a bundle holding a non-CA certificate', () => {
    expect(() => loadTrustedCAs(root.certificatePem + es256.certificatePem)).toThrow(/certificate #2 .* is not a CA/);
  });

  it('rejects a bundle holding a private key', () => {
    const key = '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n';
    expect(() => loadTrustedCAs(root.certificatePem + key)).toThrow('"PRIVATE KEY" PEM block');
  });
});

describe('ensureDevPki', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dev-pki-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the PKI, then reloads the same CA and signer', async () => {
    const pkiDir = join(dir, 'nested', 'pki');
    const first = await ensureDevPki(pkiDir, TAX_ID);
    const caPem = await readFile(first.caPemPath, 'utf8');
    expect(caPem).toBe(first.ca.certificatePem);
    expect((await stat(join(pkiDir, 'ca-key'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(pkiDir, 'signer-key'))).mode & 0o777).toBe(0o600);

    const second = await ensureDevPki(pkiDir, TAX_ID);
    expect(second.caPemPath).toBe(first.caPemPath);
    expect(await readFile(second.caPemPath, 'utf8')).toBe(caPem);
    expect(second.ca.certificatePem).toBe(caPem);
    expect(second.signer.certificatePem).toBe(first.signer.certificatePem);

    // The reloaded signer signs content the stored bundle trusts, for 10 years.
    const result = await verifySignedContent(await signPayload(payload, second.signer), loadTrustedCAs(caPem), now);
    expect(result.drfo).toBe(TAX_ID);
    const years = (Date.parse(second.signer.certificate.validTo) - now.getTime()) / (365 * DAY);
    expect(years).toBeGreaterThan(9.9);

    const viaLoad = await loadSigner(join(pkiDir, 'signer-cert.pem'), join(pkiDir, 'signer-key'));
    expect(viaLoad.certificatePem).toBe(first.signer.certificatePem);
    expect(viaLoad.alg).toBe('ES256');
  });

  it('reissues the signer (same CA) when the tax id changes', async () => {
    const pkiDir = join(dir, 'reissue');
    const first = await ensureDevPki(pkiDir, TAX_ID);
    const second = await ensureDevPki(pkiDir, '2222222222');
    expect(second.ca.certificatePem).toBe(first.ca.certificatePem);
    expect(second.signer.certificatePem).not.toBe(first.signer.certificatePem);
    const result = await verifySignedContent(await signPayload(payload, second.signer), loadTrustedCAs(await readFile(second.caPemPath, 'utf8')), now);
    expect(result.drfo).toBe('2222222222');
  });

  it('serialises concurrent first calls on one directory', async () => {
    const pkiDir = join(dir, 'concurrent');
    const results = await Promise.all([ensureDevPki(pkiDir, TAX_ID), ensureDevPki(pkiDir, TAX_ID)]);
    expect(results[1].ca.certificatePem).toBe(results[0].ca.certificatePem);
    expect(results[1].signer.certificatePem).toBe(results[0].signer.certificatePem);
  });
});
