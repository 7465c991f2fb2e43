/**
 * A real server for HTTP tests: PGlite (or a fresh schema on the PostgreSQL server when DATABASE_URL
 * is set), its own token issuer and certificate authority, fixture reference data, a movable clock.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { v4 as uuidv4 } from 'uuid';
import { loadConfig } from '../../src/config.js';
import type { Database } from '../../src/database/database.js';
import { silentLogger, type Logger } from '../../src/logger.js';
import { type ReferenceDataFile } from '../../src/referenceData/referenceData.js';
import { ALL_SCOPES } from '../../src/auth/scopes.js';
import { createServer, type RunningServer } from '../../src/server.js';
import { createCertificateAuthority, issueSignerCertificate, signPayload, type CertificateAuthority, type Signer } from '../../src/signatures/devPki.js';
import { dropSchema, freshSchemaName } from './databases.js';
import { ids, referenceData, TAX_ID } from './fixtures.js';
import { createTokenIssuer, type TestTokenClaims, type TokenIssuer } from './tokens.js';

export type TestServer = {
  server: RunningServer;
  app: RunningServer['app'];
  issuer: TokenIssuer;
  ca: CertificateAuthority;
  /** A token of the fixture pharmacist (every scope, audit:read_all too) unless told otherwise. */
  token(claims?: Partial<TestTokenClaims>): Promise<string>;
  /** A signer certificate from the trusted CA for `taxId` (default: the pharmacist's). */
  signer(taxId?: string): Promise<Signer>;
  sign(payload: object, signer?: Signer): Promise<string>;
  /** Polls the job until it is no longer pending; returns the final GET response. */
  waitForJob(href: string, token?: string): Promise<request.Response>;
  /** Moves the server's clock (ms added to real time). */
  advanceClock(ms: number): void;
  /** Sets the server's clock to `at` now (it runs on from there). */
  setClock(at: Date): void;
  /** Stops the server and starts a new one on the same data (a restart). */
  restart(): Promise<void>;
  /** Stops the server, keeping its data; `env` runs the CLI on that data. */
  stop(): Promise<void>;
  env: Record<string, string>;
  close(): Promise<void>;
};

export type Backend = 'pglite' | 'postgres';
/** HTTP suites run on PGlite always and on the PostgreSQL server when DATABASE_URL is set. */
export const testBackends = (): Backend[] => (process.env.DATABASE_URL ? ['pglite', 'postgres'] : ['pglite']);

export async function startTestServer({
  data = referenceData(),
  backend = 'pglite',
  env = {},
  database,
  logger = silentLogger(),
}: { data?: ReferenceDataFile; backend?: Backend; env?: Record<string, string>; database?: Database; logger?: Logger } = {}): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'esoz-test-'));
  const issuer = await createTokenIssuer();
  const ca = await createCertificateAuthority({ commonName: 'Test qualified trust service' });
  await writeFile(join(dir, 'jwks.json'), JSON.stringify(issuer.jwks));
  await writeFile(join(dir, 'ca.pem'), ca.certificatePem);
  const schema = backend === 'postgres' ? freshSchemaName() : undefined;
  if (backend === 'postgres' && !process.env.DATABASE_URL) throw new Error('the postgres backend needs DATABASE_URL');
  const settings: Record<string, string> = {
    DATA_DIR: dir,
    AUTH_JWKS_FILE: join(dir, 'jwks.json'),
    DS_TRUSTED_CA_FILE: join(dir, 'ca.pem'),
    PORT: '0',
    EXPIRATION_SWEEP_INTERVAL_SECONDS: '3600',
    ...(schema ? { DATABASE_URL: process.env.DATABASE_URL!, DATABASE_SCHEMA: schema } : {}),
    ...env,
  };
  const config = loadConfig(settings);
  let offset = 0;
  const start = () =>
    createServer({
      config,
      logger,
      referenceData: data,
      clock: () => new Date(Date.now() + offset),
      ...(database ? { database } : {}),
    });
  let server = await start();
  const signers = new Map<string, Signer>();
  const token = (claims: Partial<TestTokenClaims> = {}) => issuer.token({ sub: ids.user, client_id: ids.legalEntity, scope: ALL_SCOPES.join(' '), ...claims });
  const signer = async (taxId = TAX_ID) => {
    if (!signers.has(taxId)) signers.set(taxId, await issueSignerCertificate(ca, { taxId }));
    return signers.get(taxId)!;
  };
  const testServer: TestServer = {
    server,
    app: server.app,
    issuer,
    ca,
    token,
    signer,
    sign: async (payload, withSigner) => signPayload(payload, withSigner ?? (await signer())),
    async waitForJob(href, bearer) {
      const auth = `Bearer ${bearer ?? (await token())}`;
      const deadline = Date.now() + 20_000;
      for (;;) {
        const res = await request(testServer.app).get(href).set('authorization', auth);
        if (res.body?.data?.status !== 'pending') return res;
        if (Date.now() > deadline) throw new Error(`job ${href} still pending`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    advanceClock: (ms) => void (offset += ms),
    setClock: (at) => void (offset = at.getTime() - Date.now()),
    async restart() {
      await server.stop();
      server = await start();
      testServer.server = server;
      testServer.app = server.app;
    },
    env: settings,
    stop: () => server.stop(),
    async close() {
      await server.stop();
      if (schema) await dropSchema(schema);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return testServer;
}

export const newId = () => uuidv4();
