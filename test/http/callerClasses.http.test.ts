/**
 * Caller classes (docs/caller-classes.md): every operation of the OpenAPI document declares who may
 * call it (`x-caller-classes`), and each one refuses a caller outside its class with the exact answer:
 * - employee: a token of a user who is not an active employee of the token's legal entity → 403
 *   "User is not an active employee of the legal entity" (the async dispense methods: their job fails
 *   in the seed's order; mark in error with its documented 409);
 * - auditor: an MIS token without audit:read_all → 403 missing scope; a user the reference data knows
 *   but who is not an active employee of the token's legal entity → the employment 403; an auditor the
 *   reference data does not know passes on the scope;
 * - operator: a token with every other scope → 403 missing scope; a service account (not an employee)
 *   with only the scope passes;
 * - public: served without a token (metrics: METRICS_SCOPE).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { ALL_SCOPES, AUDIT_READ_ALL, MIS_SCOPES } from '../../src/auth/scopes.js';
import { NOT_AN_ACTIVE_EMPLOYEE, NOT_PERFORMER_OR_APPROVED } from '../../src/commands/shared/employment.js';
import { CALLER_CLASSES } from '../../src/http/callerClasses.js';
import { createBody, EMPLOYMENT_TAX_IDS, ids, referenceData, TAX_ID } from '../support/fixtures.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import { basedOn, completePayload, deviceRequestPool, dispenseApi, markInErrorPayload, type Res } from '../deviceDispenses/helpers.js';

type Operation = { 'x-caller-classes'?: string[]; 'x-scopes'?: string[]; security: Array<{ bearerAuth?: string[] }> };
type Document = { paths: Record<string, Record<string, Operation>> };
type Method = 'get' | 'post' | 'patch' | 'put';

/** Users outside the employee class of the fixture legal entity, and the tax id they sign with. */
const NOT_EMPLOYED: Array<[label: string, sub: string, taxId: string]> = [
  ['a user the reference data does not know', ids.userWithoutParty, TAX_ID],
  ['a user whose party has no employee', ids.userWithoutEmployee, EMPLOYMENT_TAX_IDS.withoutEmployee],
  ['an employee of another legal entity only', ids.otherLegalEntityUser, EMPLOYMENT_TAX_IDS.otherLegalEntity],
  ['a dismissed employee', ids.dismissedUser, EMPLOYMENT_TAX_IDS.dismissed],
];
const KNOWN_NOT_EMPLOYED = NOT_EMPLOYED.filter(([, sub]) => sub !== ids.userWithoutParty);

const missingScope = (scope: string) => ({ type: 'forbidden', message: `Your scope does not allow to access this resource. Missing allowances: ${scope}` });
const notEmployed = { type: 'forbidden', message: NOT_AN_ACTIVE_EMPLOYEE };

/** The answer, status first, so a failure names the operation and what came back. */
const seen = (label: string, res: Res) => ({ label, status: res.status, error: res.body?.error, data: res.body?.data });

describe.each(testBackends())('caller classes on %s', (backend) => {
  const data = referenceData();
  const fresh = deviceRequestPool(data, 20);
  let t: TestServer;
  let doc: Document;
  let dispense: Record<string, unknown> & { id: string };
  /** The pharmacist's (processed) create job. */
  let jobId: string;

  beforeAll(async () => {
    t = await startTestServer({ data, backend });
    doc = (await request(t.app).get('/api/openapi.json')).body as Document;
    const api = dispenseApi(t);
    const accepted = await api.postCreate(createBody(newId(), basedOn(fresh())));
    jobId = String(accepted.body.data.links[0].href).split('/').pop()!;
    const done = await api.job(accepted);
    expect(done.status).toBe(303);
    const created = await request(t.app)
      .get(String(done.body.data.links[0].href))
      .set('authorization', `Bearer ${await t.token()}`);
    dispense = created.body.data;
    expect(dispense.status).toBe('in_progress');
  }, 120_000);
  afterAll(async () => t.close());

  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({ method: method as Method, path, operation, key: `${method.toUpperCase()} ${path}` })),
    );

  /** A concrete URL: real ids where an operation needs one to get past its own lookups. */
  const urlOf = (path: string) =>
    path
      .replace('{patient_id}', ids.patient)
      .replace('/jobs/{id}', `/jobs/${jobId}`)
      .replace('/device_dispenses/{id}', `/device_dispenses/${dispense.id}`)
      .replace('/licenses/{id}', `/licenses/${ids.primaryLicense}`)
      .replace('{stream}', `device_dispense-${dispense.id}`)
      .replace('{kind}', 'users')
      .replace('{name}', 'no-such-projection')
      .replace(/\{id\}/g, newId());

  const call = async (method: Method, path: string, token: string | null, body?: object) => {
    let req = request(t.app)[method](urlOf(path));
    if (token !== null) req = req.set('authorization', `Bearer ${token}`);
    if (path.startsWith('/api/admin/reference') && method === 'post') return req.set('content-type', 'application/x-ndjson').send('');
    return body === undefined ? req : req.send(body);
  };

  it('every operation declares exactly one of the classes (or employee or auditor, the audit reads)', () => {
    const all = operations();
    expect(all.length).toBeGreaterThan(30);
    for (const { key, operation } of all) {
      const classes = operation['x-caller-classes'] ?? [];
      expect([key, classes.length > 0 && classes.every((c) => (CALLER_CLASSES as readonly string[]).includes(c))]).toEqual([key, true]);
      if (classes.length > 1) expect([key, classes]).toEqual([key, ['employee', 'auditor']]);
    }
  });

  describe('employee operations refuse a user who is not an active employee of the legal entity', () => {
    /** The async dispense methods: the job fails, in the seed's order (see employment.http.test.ts). */
    const inJob: Record<string, (taxId: string, sub: string) => Promise<{ body?: object; status: number; error: unknown }>> = {
      'POST /api/patients/{patient_id}/device_dispenses': async () => ({
        body: createBody(newId(), basedOn(fresh())),
        status: 403,
        error: NOT_AN_ACTIVE_EMPLOYEE,
      }),
      'PATCH /api/patients/{patient_id}/device_dispenses/{id}/actions/stop': async () => ({ status: 403, error: NOT_AN_ACTIVE_EMPLOYEE }),
      'PATCH /api/patients/{patient_id}/device_dispenses/{id}/actions/complete': async (taxId, sub) => ({
        body: { signed_data: await t.sign(completePayload(dispense), await t.signer(taxId)) },
        status: 403,
        // The page checks the signature first: a user without a party fails there, with its own 403.
        error: sub === ids.userWithoutParty ? 'User is not allowed to this action by client_id' : NOT_AN_ACTIVE_EMPLOYEE,
      }),
      'PATCH /api/patients/{patient_id}/device_dispenses/{id}/actions/mark_in_error': async (taxId) => ({
        body: { signed_data: await t.sign(markInErrorPayload(dispense), await t.signer(taxId)) },
        status: 409,
        error: { type: 'request_conflict', message: NOT_PERFORMER_OR_APPROVED },
      }),
    };

    it.each(NOT_EMPLOYED)('%s', async (_label, sub, taxId) => {
      const token = await t.token({ sub, scope: MIS_SCOPES.join(' ') });
      const employeeOps = operations().filter(({ operation }) => operation['x-caller-classes']?.includes('employee'));
      expect(employeeOps.length).toBeGreaterThanOrEqual(17);
      for (const { key, method, path } of employeeOps) {
        const async = inJob[key];
        if (async) {
          const expected = await async(taxId, sub);
          const accepted = await call(method, path, token, expected.body);
          expect(seen(key, accepted)).toMatchObject({ label: key, status: 202 });
          const job = await t.waitForJob(String(accepted.body.data.links[0].href), token);
          expect(seen(key, job)).toMatchObject({ label: key, status: expected.status, data: { status: 'failed', error: expected.error } });
          continue;
        }
        const body = method === 'get' ? undefined : { is_primary: false, order_no: 'ORD-1' };
        expect(seen(key, await call(method, path, token, body))).toEqual({ label: key, status: 403, error: notEmployed, data: undefined });
      }
      // The dispense and the licences are as they were.
      const shown = await request(t.app)
        .get(`/api/patients/${ids.patient}/device_dispenses/${dispense.id}`)
        .set('authorization', `Bearer ${await t.token()}`);
      expect(shown.body.data).toEqual(dispense);
    });

    it('an active employee passes every one of them (no 401/403)', async () => {
      const token = await t.token({ sub: ids.otherUser, scope: MIS_SCOPES.join(' ') });
      for (const { key, method, path } of operations().filter(({ operation, key: k }) => operation['x-caller-classes']?.includes('employee') && !inJob[k])) {
        const res = await call(method, path, token, method === 'get' ? undefined : { is_primary: false, order_no: 'ORD-1' });
        expect([key, res.status === 401 || res.status === 403]).toEqual([key, false]);
      }
    });

    it("the job GET: a non-employee reads their own failed job, never the pharmacist's", async () => {
      const token = await t.token({ sub: ids.dismissedUser });
      const own = await dispenseApi(t).patchAction(dispense.id, 'stop', undefined, { token });
      const failed = await t.waitForJob(String(own.body.data.links[0].href), token);
      expect(seen('own job', failed)).toMatchObject({ status: 403, data: { status: 'failed', status_code: '403', error: NOT_AN_ACTIVE_EMPLOYEE } });
      const theirs = await request(t.app).get(`/api/jobs/${jobId}`).set('authorization', `Bearer ${token}`);
      expect(seen('their job', theirs)).toEqual({ label: 'their job', status: 403, error: notEmployed, data: undefined });
    });
  });

  describe('auditor operations', () => {
    const auditorOps = () => operations().filter(({ operation }) => operation['x-caller-classes']?.includes('auditor'));

    it('refuse an MIS token without audit:read_all where the auditor is the only class', async () => {
      const token = await t.token({ scope: MIS_SCOPES.join(' ') });
      const only = auditorOps().filter(({ operation }) => operation['x-caller-classes']!.length === 1);
      expect(only.length).toBeGreaterThanOrEqual(1);
      for (const { key, method, path } of only)
        expect(seen(key, await call(method, path, token))).toEqual({ label: key, status: 403, error: missingScope(AUDIT_READ_ALL), data: undefined });
    });

    it.each(KNOWN_NOT_EMPLOYED)('refuse %s holding audit:read_all (the reference data knows the user)', async (_label, sub) => {
      const token = await t.token({ sub, scope: AUDIT_READ_ALL });
      for (const { key, method, path } of auditorOps())
        expect(seen(key, await call(method, path, token))).toEqual({ label: key, status: 403, error: notEmployed, data: undefined });
    });

    it('pass a national auditor the reference data does not know, on the scope alone', async () => {
      const token = await t.token({ sub: ids.userWithoutParty, client_id: newId(), scope: AUDIT_READ_ALL });
      for (const { key, method, path } of auditorOps()) {
        const res = await call(method, path, token);
        expect([key, res.status === 401 || res.status === 403]).toEqual([key, false]);
      }
    });
  });

  describe('operator operations', () => {
    const operatorOps = () => operations().filter(({ operation }) => operation['x-caller-classes']?.includes('operator'));

    it('refuse an MIS token (every other scope) with 403 naming the operator scope', async () => {
      expect(operatorOps().length).toBeGreaterThanOrEqual(9);
      for (const { key, method, path, operation } of operatorOps()) {
        const [scope] = operation['x-scopes']!;
        const token = await t.token({ scope: ALL_SCOPES.filter((s) => s !== scope).join(' ') });
        expect(seen(key, await call(method, path, token, {}))).toEqual({ label: key, status: 403, error: missingScope(scope!), data: undefined });
      }
    });

    it('pass a service account that is no employee, with only the scope', async () => {
      for (const { key, method, path, operation } of operatorOps()) {
        const token = await t.token({ sub: ids.userWithoutParty, client_id: newId(), scope: operation['x-scopes']![0]! });
        const res = await call(method, path, token, method === 'put' ? { version: 1 } : {});
        expect([key, res.status === 401 || res.status === 403]).toEqual([key, false]);
      }
    });
  });

  it('public operations answer without a token; /metrics keeps METRICS_SCOPE', async () => {
    const publicOps = operations().filter(({ operation }) => operation['x-caller-classes']?.includes('public'));
    expect(publicOps.map(({ key }) => key).sort()).toEqual(
      ['GET /', 'GET /api/openapi.json', 'GET /docs', 'GET /health/live', 'GET /health/ready', 'GET /metrics'].sort(),
    );
    for (const { key, method, path } of publicOps.filter(({ path: p }) => p !== '/metrics'))
      expect([key, (await call(method, path, null)).status]).toEqual([key, 200]);
    const metrics = await call('get', '/metrics', await t.token({ sub: ids.userWithoutParty, scope: 'device_dispense:read' }));
    expect(seen('metrics', metrics)).toMatchObject({ status: 403, error: missingScope('admin:read') });
    expect((await call('get', '/metrics', await t.token({ sub: ids.userWithoutParty, scope: 'admin:read' }))).status).toBe(200);
  });
});
