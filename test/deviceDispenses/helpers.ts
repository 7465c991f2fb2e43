/**
 * Shared pieces of the device-dispense validation suites (create/complete/stop/mark_in_error):
 * fresh device requests per test, calls through HTTP only, and the exact shapes of the answers
 * (synchronous errors and failed jobs, as src/http/jobs.ts renders each status code).
 */
import { expect } from '@jest/globals';
import request from 'supertest';
import { v4 as uuidv4 } from 'uuid';
import type { ReferenceDataFile } from '../../src/referenceData/referenceData.js';
import { createCertificateAuthority, issueSignerCertificate, type Signer } from '../../src/signatures/devPki.js';
import { createBody, ids, ref, TAX_ID } from '../support/fixtures.js';
import { newId, type TestServer } from '../support/testServer.js';

export type Res = request.Response;
type DeviceRequestRecord = ReferenceDataFile['device_requests'][number];
type Claims = Partial<{ sub: string; client_id: string; scope: string }>;

export const dispensesPath = (patientId: string = ids.patient) => `/api/patients/${patientId}/device_dispenses`;
export const basedOn = (deviceRequestId: string) => ({ based_on: ref('device_request', deviceRequestId) });
export const markInErrorReason = (code = 'incorrect_device') => ({ coding: [{ system: 'device_dispense_mark_in_error_reasons', code }] });

/**
 * Adds `count` copies of the fixture's ids.deviceRequest (with `overrides`) to `data`; the function
 * returned hands out a new one per call, so no test sees another test's dispenses on its request.
 */
export function deviceRequestPool(data: ReferenceDataFile, count: number, overrides: Partial<DeviceRequestRecord> = {}): () => string {
  const template = data.device_requests.find((r) => r.id === ids.deviceRequest);
  if (!template) throw new Error('fixture device request missing');
  const made = Array.from({ length: count }, () => ({ ...structuredClone(template), id: uuidv4(), ...overrides }));
  data.device_requests.push(...made);
  let next = 0;
  return () => {
    const found = made[next++];
    if (!found) throw new Error(`device request pool of ${count} exhausted: make it larger`);
    return found.id;
  };
}

/** Whose token (default: the fixture pharmacist's) and which patient's URL (default: ids.patient). */
export type CallOptions = { patientId?: string; token?: string };

export function dispenseApi(t: TestServer) {
  const bearer = async (token?: string) => `Bearer ${token ?? (await t.token())}`;

  const api = {
    token: (claims: Claims = {}) => t.token(claims),

    /** POST create; the raw answer (202, or a synchronous error). */
    async postCreate(body: unknown, { patientId, token }: CallOptions = {}): Promise<Res> {
      return request(t.app)
        .post(dispensesPath(patientId))
        .set('authorization', await bearer(token))
        .send(body as object);
    },
    /** PATCH …/actions/<name>; the raw answer. No body (stop) when `body` is undefined. */
    async patchAction(id: string, name: string, body?: unknown, { patientId, token }: CallOptions = {}): Promise<Res> {
      const req = request(t.app)
        .patch(`${dispensesPath(patientId)}/${id}/actions/${name}`)
        .set('authorization', await bearer(token));
      return body === undefined ? req : req.send(body as object);
    },
    /** A 202 and the job's final answer (GET /api/jobs/{id} with the same token). */
    async job(accepted: Res, token?: string): Promise<Res> {
      expect(accepted.status).toBe(202);
      expect(accepted.body.data).toMatchObject({ status: 'pending', links: [{ entity: 'job', href: expect.stringMatching(/^\/api\/jobs\//) }] });
      return t.waitForJob(accepted.body.data.links[0].href, token ?? (await t.token()));
    },
    async create(body: unknown, options: CallOptions = {}): Promise<Res> {
      return api.job(await api.postCreate(body, options), options.token);
    },
    async action(id: string, name: string, body?: unknown, options: CallOptions = {}): Promise<Res> {
      return api.job(await api.patchAction(id, name, body, options), options.token);
    },
    async get(id: string, { patientId, token }: CallOptions = {}): Promise<Res> {
      return request(t.app)
        .get(`${dispensesPath(patientId)}/${id}`)
        .set('authorization', await bearer(token));
    },

    /** Creates an in_progress dispense on `deviceRequestId` (fixture pharmacist) and returns it as GET shows it. */
    async createInProgress(deviceRequestId: string, overrides: Record<string, unknown> = {}): Promise<Record<string, unknown> & { id: string }> {
      const id = newId();
      expectProcessed(await api.create(createBody(id, { ...basedOn(deviceRequestId), ...overrides })), id);
      const shown = await api.get(id);
      expect(shown.status).toBe(200);
      expect(shown.body.data.status).toBe('in_progress');
      return shown.body.data;
    },
    async stop(id: string): Promise<Record<string, unknown> & { id: string }> {
      expectProcessed(await api.action(id, 'stop'), id);
      return (await api.get(id)).body.data;
    },
    async complete(current: Record<string, unknown>): Promise<Record<string, unknown> & { id: string }> {
      const id = String(current.id);
      expectProcessed(await api.action(id, 'complete', { signed_data: await t.sign(completePayload(current)) }), id);
      return (await api.get(id)).body.data;
    },
    async markInError(current: Record<string, unknown>): Promise<Record<string, unknown> & { id: string }> {
      const id = String(current.id);
      expectProcessed(await api.action(id, 'mark_in_error', { signed_data: await t.sign(markInErrorPayload(current)) }), id);
      return (await api.get(id)).body.data;
    },
  };
  return api;
}

/** What Complete signs: the dispense as GET shows it, status completed, hand-over and payment added. */
export const completePayload = (current: Record<string, unknown>, overrides: Record<string, unknown> = {}) => ({
  ...current,
  status: 'completed',
  // Handed over when it was created: never before inserted_at, never ahead of the server's clock.
  when_handed_over: String(current.inserted_at),
  payment_amount: 50,
  payment_id: 'R-1239804',
  ...overrides,
});

/** What Mark in error signs: the dispense as GET shows it, status entered_in_error and a reason. */
export const markInErrorPayload = (current: Record<string, unknown>, overrides: Record<string, unknown> = {}) => ({
  ...current,
  status: 'entered_in_error',
  status_reason: markInErrorReason(),
  ...overrides,
});

// --- Signed content that must be refused ------------------------------------------------------------

const b64url = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const x5cOf = (signer: Signer) => signer.chainPem.map((pem) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''));

export const badSignatures = {
  /** The document itself, not signed at all. */
  jsonString: (payload: object) => JSON.stringify(payload),
  garbage: () => 'this is not a signature at all',
  /** A JWS whose header says alg "none" and whose signature is empty (x5c of a trusted signer). */
  algNone: (payload: object, signer: Signer) => `${b64url({ alg: 'none', x5c: x5cOf(signer) })}.${b64url(payload)}.`,
  /** alg "none" with some bytes where the signature would be. */
  algNoneWithSignature: (payload: object, signer: Signer) => `${b64url({ alg: 'none', x5c: x5cOf(signer) })}.${b64url(payload)}.${b64url('signature')}`,
  /** A valid JWS whose payload was replaced afterwards. */
  tampered: (jws: string, payload: object) => {
    const [header, , signature] = jws.split('.');
    return `${header}.${b64url(payload)}.${signature}`;
  },
};

/** A signer whose certificate comes from a CA the server does not trust. */
export async function untrustedSigner(taxId = TAX_ID): Promise<Signer> {
  return issueSignerCertificate(await createCertificateAuthority({ commonName: 'Somebody else’s CA' }), { taxId });
}

const DAY_MS = 24 * 3600 * 1000;
/** A signer from the trusted CA whose certificate expired yesterday. */
export const expiredSigner = (t: TestServer, taxId = TAX_ID) =>
  issueSignerCertificate(t.ca, { taxId, notBefore: new Date(Date.now() - 400 * DAY_MS), notAfter: new Date(Date.now() - DAY_MS) });
/** A signer from the trusted CA whose certificate is valid only from tomorrow. */
export const notYetValidSigner = (t: TestServer, taxId = TAX_ID) =>
  issueSignerCertificate(t.ca, { taxId, notBefore: new Date(Date.now() + DAY_MS), notAfter: new Date(Date.now() + 400 * DAY_MS) });

// --- Exact shapes of the answers --------------------------------------------------------------------

export const SIGNED_CONTENT = {
  invalid: 'Invalid signed content',
  untrusted: 'Signer certificate is not trusted',
  expired: 'Signer certificate is expired or not yet valid',
  badSignature: 'Signature is invalid',
} as const;

export function expectProcessed(res: Res, id: string, patientId: string = ids.patient): void {
  expect(res.body.data).toMatchObject({
    status: 'processed',
    status_code: '200',
    links: [{ entity: 'device_dispense', href: `${dispensesPath(patientId)}/${id}` }],
  });
  expect(res.status).toBe(303);
}

export function expectJobConflict(res: Res, message: string): void {
  expect(res.body.data).toMatchObject({ status: 'failed', status_code: '409', error: { type: 'request_conflict', message } });
  expect(res.status).toBe(409);
}

/** A failed 422 job: the message, and (when given) the one `invalid` entry it names. */
export function expectJobUnprocessable(res: Res, message: string, entry?: string, rule?: string): void {
  expect(res.body.data).toMatchObject({ status: 'failed', status_code: '422', error: { type: 'validation_failed', message } });
  if (entry !== undefined) {
    expect(res.body.data.error.invalid).toEqual([
      { entry, entry_type: 'json_data_property', rules: [expect.objectContaining({ ...(rule ? { rule } : {}), description: message })] },
    ]);
  }
  expect(res.status).toBe(422);
}

export function expectJobNotFound(res: Res): void {
  expect(res.body.data).toEqual({ error: { type: 'not_found' } });
  expect(res.status).toBe(404);
}

export function expectJobBadRequest(res: Res, message: string): void {
  expect(res.body.data).toMatchObject({ status: 'failed', status_code: '400', error: { type: 'request_malformed', message } });
  expect(res.status).toBe(400);
}

/** A failed 403 job: `error` is the message itself. */
export function expectJobForbidden(res: Res, message: string): void {
  expect(res.body.data).toMatchObject({ status: 'failed', status_code: '403', error: message });
  expect(res.status).toBe(403);
}

export function expectInvalidAccessToken(res: Res): void {
  expect(res.body.error).toEqual({ type: 'access_denied', message: 'Invalid access token' });
  expect(res.body.meta).toMatchObject({ code: 401 });
  expect(res.status).toBe(401);
}

export function expectMissingScope(res: Res, scope: string): void {
  expect(res.body.error).toEqual({ type: 'forbidden', message: `Your scope does not allow to access this resource. Missing allowances: ${scope}` });
  expect(res.status).toBe(403);
}

/** A synchronous 422 from the request's JSON schema, with the rule at `entry` (no job was created). */
export function expectSchemaError(res: Res, entry: string, rule: string, description: string): void {
  expect(res.body.error).toMatchObject({ type: 'validation_failed' });
  expect(res.body.error.invalid).toContainEqual({ entry, entry_type: 'json_data_property', rules: [expect.objectContaining({ rule, description })] });
  expect(res.body).not.toHaveProperty('data');
  expect(res.status).toBe(422);
}

/** Every scope but `scope`. */
export const scopesWithout = (all: readonly string[], scope: string) => all.filter((s) => s !== scope).join(' ');

/** A token that expired a minute ago (issued by the server's trusted issuer). */
export const expiredToken = (t: TestServer, claims: Claims = {}) =>
  t.issuer.token(
    {
      sub: ids.user,
      client_id: ids.legalEntity,
      scope: 'device_dispense:write device_dispense:read device_dispense:complete device_dispense:stop device_dispense:mark_in_error',
      ...claims,
    },
    { expiresIn: -60 },
  );
