/**
 * Development PKI: a local CA and signer certificates for the embedded default, demos and tests.
 * node:crypto verifies but cannot create certificates, so creation uses @peculiar/x509 (over webcrypto);
 * everything else here stays on node:crypto and jose.
 */
import { KeyObject, X509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CompactSign } from 'jose';
import { splitPemCertificates } from './trustStore.js';
import { drfoOf, type SignedContentAlgorithm } from './verifySignedContent.js';

type CryptoKey = webcrypto.CryptoKey;
// Type only (erased): the module itself is loaded lazily below, after its polyfill.
type X509Module = typeof X509;

export type CertificateAuthority = {
  certificatePem: string;
  certificate: X509Certificate;
  privateKey: CryptoKey;
  /** Certificates to send in x5c after a signer's own: this CA and its issuers, except the self-signed root. */
  intermediatesPem: string[];
};

export type Signer = {
  certificatePem: string;
  certificate: X509Certificate;
  /** The signer certificate first, then intermediates (never the root): what goes into x5c. */
  chainPem: string[];
  privateKey: CryptoKey;
  alg: SignedContentAlgorithm;
};

export type AuthorityOptions = { commonName?: string; notBefore?: Date; notAfter?: Date };

export type SignerOptions = {
  taxId: string;
  commonName?: string;
  notBefore?: Date;
  notAfter?: Date;
  keyAlgorithm?: SignedContentAlgorithm;
  /** Subject serialNumber (2.5.4.5); default `TINUA-${taxId}`, null omits the attribute. */
  serialNumberAttribute?: string | null;
};

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const RSA_KEY = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;
const RSA_GENERATE = { ...RSA_KEY, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) } as const;

const HOUR_MS = 3_600_000;
const YEAR_MS = 365.25 * 24 * HOUR_MS;
// Start an hour back so a certificate made now is already valid on a machine whose clock is slightly behind.
const defaultNotBefore = () => new Date(Date.now() - HOUR_MS);
const after = (from: Date, years: number) => new Date(from.getTime() + years * YEAR_MS);

let x509Loading: Promise<X509Module> | undefined;
/** Loaded lazily: only the development PKI (demo, tests) needs certificate generation. */
function loadX509(): Promise<X509Module> {
  x509Loading ??= (async () => {
    // @peculiar/x509's DI container (tsyringe) needs the Reflect metadata polyfill loaded first.
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return x509Loading;
}

export async function createCertificateAuthority(options: AuthorityOptions = {}): Promise<CertificateAuthority> {
  const x509 = await loadX509();
  const keys = await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
  const notBefore = options.notBefore ?? defaultNotBefore();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [options.commonName ?? 'ESOZ Development Root CA'] }],
    keys,
    notBefore,
    notAfter: options.notAfter ?? after(notBefore, 20),
    signingAlgorithm: signingAlgorithmFor(keys.privateKey),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certificatePem = normalizePem(cert.toString('pem'));
  return { certificatePem, certificate: new X509Certificate(certificatePem), privateKey: keys.privateKey, intermediatesPem: [] };
}

/** An intermediate CA issued by `parent`, so that signer → intermediate → root chains can be exercised. */
export async function issueIntermediateAuthority(parent: CertificateAuthority, options: AuthorityOptions = {}): Promise<CertificateAuthority> {
  const keys = await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
  const notBefore = options.notBefore ?? defaultNotBefore();
  const x509 = await loadX509();
  const cert = await issue(parent, keys.publicKey, {
    subject: [{ CN: [options.commonName ?? 'ESOZ Development Intermediate CA'] }],
    notBefore,
    notAfter: options.notAfter ?? after(notBefore, 10),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return {
    certificatePem: cert,
    certificate: new X509Certificate(cert),
    privateKey: keys.privateKey,
    intermediatesPem: [cert, ...parent.intermediatesPem],
  };
}

export async function issueSignerCertificate(ca: CertificateAuthority, options: SignerOptions): Promise<Signer> {
  const alg = options.keyAlgorithm ?? 'ES256';
  const keys =
    alg === 'ES256'
      ? await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])
      : await webcrypto.subtle.generateKey(RSA_GENERATE, true, ['sign', 'verify']);
  const serialNumberAttribute = options.serialNumberAttribute === undefined ? `TINUA-${options.taxId}` : options.serialNumberAttribute;
  const subject: Record<string, string[]>[] = [{ CN: [options.commonName ?? `Development signer ${options.taxId}`] }];
  // 2.5.4.5 by OID: @peculiar/x509 has no short name registered for serialNumber.
  if (serialNumberAttribute !== null) subject.push({ '2.5.4.5': [serialNumberAttribute] });
  const notBefore = options.notBefore ?? defaultNotBefore();
  const x509 = await loadX509();
  const certificatePem = await issue(ca, keys.publicKey, {
    subject,
    notBefore,
    notAfter: options.notAfter ?? after(notBefore, 1),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation, true),
    ],
  });
  return {
    certificatePem,
    certificate: new X509Certificate(certificatePem),
    chainPem: [certificatePem, ...ca.intermediatesPem],
    privateKey: keys.privateKey,
    alg,
  };
}

/** Compact JWS of `payload` with protected header { alg, x5c }; extraChainPem is appended to x5c (tests). */
export async function signPayload(payload: object, signer: Signer, extraChainPem: string[] = []): Promise<string> {
  const x5c = [...signer.chainPem, ...extraChainPem].map((pem) => new X509Certificate(pem).raw.toString('base64'));
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader({ alg: signer.alg, x5c }).sign(signer.privateKey);
}

/** A signer from a certificate PEM (signer first, then intermediates) and its private key PEM. */
export async function loadSigner(certPemPath: string, keyPemPath: string): Promise<Signer> {
  const chainPem = splitPemCertificates(await readFile(certPemPath, 'utf8')).map(normalizePem);
  const certificatePem = chainPem[0];
  if (certificatePem === undefined) throw new Error(`${certPemPath}: no certificate found`);
  const certificate = new X509Certificate(certificatePem);
  const { privateKey, alg } = await importPrivateKey(await readFile(keyPemPath, 'utf8'), certificate, keyPemPath);
  return { certificatePem, certificate, chainPem, privateKey, alg };
}

/** A CA from its certificate PEM (the CA first, optionally followed by its issuers) and private key PEM. */
async function loadCertificateAuthority(certPemPath: string, keyPemPath: string): Promise<CertificateAuthority> {
  const pems = splitPemCertificates(await readFile(certPemPath, 'utf8')).map(normalizePem);
  const certificatePem = pems[0];
  if (certificatePem === undefined) throw new Error(`${certPemPath}: no certificate found`);
  const certificate = new X509Certificate(certificatePem);
  const { privateKey } = await importPrivateKey(await readFile(keyPemPath, 'utf8'), certificate, keyPemPath);
  // The root is the verifier's trust anchor and never travels in x5c.
  const intermediatesPem = pems.filter((pem) => !isSelfSigned(new X509Certificate(pem)));
  return { certificatePem, certificate, privateKey, intermediatesPem };
}

export type DevPki = { caPemPath: string; ca: CertificateAuthority; signer: Signer };

/**
 * Creates (first call) or reloads (later calls) a development PKI under `dir`:
 * ca.pem (the trusted bundle), ca-key, signer-cert.pem, signer-key (keys PKCS8 PEM, mode 0600).
 * The signer certificate is reissued when it is for another tax id, no longer valid or not from this CA.
 */
export async function ensureDevPki(dir: string, taxId: string): Promise<DevPki> {
  // Otherwise `TINUA-${taxId}` never yields this drfo and every call would reissue the signer.
  if (!/^\d+$/.test(taxId)) throw new Error(`ensureDevPki: tax id must be digits, got "${taxId}"`);
  await mkdir(dir, { recursive: true });
  const paths = {
    caPem: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca-key'),
    signerPem: join(dir, 'signer-cert.pem'),
    signerKey: join(dir, 'signer-key'),
  };
  // Parallel jest workers or processes may share the directory; the lock keeps key and cert files paired.
  return withDirectoryLock(dir, async () => {
    const [hasCaPem, hasCaKey] = await Promise.all([exists(paths.caPem), exists(paths.caKey)]);
    if (hasCaPem && !hasCaKey) {
      // Someone may already trust this bundle: refuse to replace it silently.
      throw new Error(`${paths.caPem} exists but ${paths.caKey} is missing; restore the key or remove the CA`);
    }
    let ca: CertificateAuthority;
    let caCreated = false;
    if (hasCaPem) {
      ca = await loadCertificateAuthority(paths.caPem, paths.caKey);
    } else {
      // A key without ca.pem was never trusted by anyone (e.g. an interrupted first run): start over.
      ca = await createCertificateAuthority({ commonName: 'ESOZ Development Root CA' });
      await writeFileAtomic(paths.caKey, await exportPkcs8Pem(ca.privateKey), 0o600);
      await writeFileAtomic(paths.caPem, ca.certificatePem, 0o644);
      caCreated = true;
    }

    const current = caCreated ? null : await loadUsableSigner(paths.signerPem, paths.signerKey, ca, taxId);
    if (current) return { caPemPath: paths.caPem, ca, signer: current };

    const notBefore = defaultNotBefore();
    const signer = await issueSignerCertificate(ca, { taxId, notBefore, notAfter: after(notBefore, 10) });
    await writeFileAtomic(paths.signerKey, await exportPkcs8Pem(signer.privateKey), 0o600);
    await writeFileAtomic(paths.signerPem, signer.chainPem.join(''), 0o644);
    return { caPemPath: paths.caPem, ca, signer };
  });
}

// ——— internals ———

type IssueParams = {
  subject: Record<string, string[]>[];
  notBefore: Date;
  notAfter: Date;
  extensions: InstanceType<X509Module['Extension']>[];
};

async function issue(ca: CertificateAuthority, publicKey: CryptoKey, params: IssueParams): Promise<string> {
  const x509 = await loadX509();
  // The issuer name is copied from the CA's DER so that it matches byte for byte (checkIssued compares names).
  const caCert = new x509.X509Certificate(ca.certificate.raw);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: params.subject,
    issuer: caCert.subjectName,
    notBefore: params.notBefore,
    notAfter: params.notAfter,
    publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: signingAlgorithmFor(ca.privateKey),
    extensions: [
      ...params.extensions,
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(await caCert.publicKey.export()),
    ],
  });
  return normalizePem(cert.toString('pem'));
}

/** One trailing newline, LF: generated and reloaded PEMs compare equal and concatenate into a valid bundle. */
const normalizePem = (pem: string): string => `${pem.trim().replace(/\r\n/g, '\n')}\n`;

function signingAlgorithmFor(key: CryptoKey): { name: string; hash: string } {
  return key.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: RSA_KEY.name, hash: 'SHA-256' };
}

/** 16 random bytes, top bit clear so the DER INTEGER is positive, next bit set so it is minimal. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function isSelfSigned(cert: X509Certificate): boolean {
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

async function importPrivateKey(pem: string, certificate: X509Certificate, source: string): Promise<{ privateKey: CryptoKey; alg: SignedContentAlgorithm }> {
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(pem);
  } catch (error) {
    throw new Error(`${source}: not a private key PEM (${(error as Error).message})`);
  }
  if (!certificate.checkPrivateKey(keyObject)) throw new Error(`${source}: the key does not match the certificate`);
  // Re-exported as PKCS8 DER so SEC1 / PKCS1 PEM files are accepted too.
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  const type = keyObject.asymmetricKeyType;
  if (type === 'ec' && keyObject.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return { privateKey: await webcrypto.subtle.importKey('pkcs8', der, EC_KEY, true, ['sign']), alg: 'ES256' };
  }
  if (type === 'rsa') {
    return { privateKey: await webcrypto.subtle.importKey('pkcs8', der, RSA_KEY, true, ['sign']), alg: 'RS256' };
  }
  throw new Error(`${source}: unsupported key (need EC P-256 for ES256 or RSA for RS256)`);
}

async function loadUsableSigner(certPath: string, keyPath: string, ca: CertificateAuthority, taxId: string): Promise<Signer | null> {
  if (!(await exists(certPath)) || !(await exists(keyPath))) return null;
  let signer: Signer;
  try {
    signer = await loadSigner(certPath, keyPath);
  } catch {
    // A signer is cheap to replace; a broken pair (e.g. an interrupted write) is simply reissued.
    return null;
  }
  const cert = signer.certificate;
  const now = Date.now();
  const valid = Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo);
  const fromThisCa = cert.checkIssued(ca.certificate) && cert.verify(ca.certificate.publicKey);
  return valid && fromThisCa && drfoOf(cert) === taxId ? signer : null;
}

async function exportPkcs8Pem(key: CryptoKey): Promise<string> {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Write-then-rename: readers never see a half-written file; `mode` applies as the file is created. */
async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' });
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

const LOCK_STALE_MS = 60_000;
const LOCK_TIMEOUT_MS = 30_000;

async function withDirectoryLock<T>(dir: string, work: () => Promise<T>): Promise<T> {
  const lock = join(dir, '.lock');
  const started = Date.now();
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = await stat(lock).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      // A crashed holder leaves the directory behind; generating keys takes well under a minute.
      if (age > LOCK_STALE_MS) await rm(lock, { recursive: true, force: true });
      else if (Date.now() - started > LOCK_TIMEOUT_MS) throw new Error(`${lock}: timed out waiting for the lock`);
      else await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  try {
    return await work();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}
