/**
 * The trusted CA bundle (`DS_TRUSTED_CA_FILE`): a PEM file with one or more CA certificates.
 * Loading fails loudly at startup rather than letting every signed request fail later as "not trusted".
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Splits a PEM bundle into its certificate blocks (text between blocks, e.g. comments, is ignored). */
export function splitPemCertificates(pem: string): string[] {
  const blocks: string[] = [];
  for (const match of pem.matchAll(PEM_BLOCK)) {
    const label = match[1];
    // A key or CRL in the trust bundle is almost certainly a mistake in deployment: say so.
    if (label !== 'CERTIFICATE') throw new Error(`Trusted CA bundle holds a "${label}" PEM block; only certificates are allowed`);
    blocks.push(match[0]);
  }
  return blocks;
}

export function loadTrustedCAs(pem: string): X509Certificate[] {
  const blocks = splitPemCertificates(pem);
  if (blocks.length === 0) throw new Error('Trusted CA bundle holds no certificate');
  return blocks.map((block, index) => {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch (error) {
      throw new Error(`Trusted CA bundle: certificate #${index + 1} cannot be parsed (${(error as Error).message})`);
    }
    if (!cert.ca) {
      throw new Error(`Trusted CA bundle: certificate #${index + 1} (${oneLine(cert.subject)}) is not a CA (basicConstraints CA flag missing)`);
    }
    return cert;
  });
}

/** Reads and loads `DS_TRUSTED_CA_FILE`; errors name the file. */
export async function loadTrustedCAFile(path: string): Promise<X509Certificate[]> {
  const pem = await readFile(path, 'utf8');
  try {
    return loadTrustedCAs(pem);
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`);
  }
}

/** node:crypto renders a DN one attribute per line; a log/error message wants one line. */
export const oneLine = (dn: string): string => dn.split('\n').join(', ');
