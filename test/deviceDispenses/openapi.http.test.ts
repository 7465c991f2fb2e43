/**
 * Our requests and responses against the official ЕСОЗ schemas (shared/spec/openapi/*.json), with only
 * the documented conversion artifacts relaxed (test/support/openapi.ts). Every response of the device
 * dispense endpoints and every job outcome we produce is validated; the signed payloads an MIS builds
 * from our GET details are validated against the signed-payload schemas.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import type { ReferenceDataFile } from '../../src/referenceData/referenceData.js';
import { createBody, ids, ref, referenceData } from '../support/fixtures.js';
import { loadOperation, relaxed, relaxedSchemaErrors, requestSchema, responseSchema, schemaErrors, type Schema } from '../support/openapi.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';

/** Starting a server (and this file's fixtures) can take a while on a loaded machine. */
const SETUP_TIMEOUT_MS = 120_000;

const CREATE = 'device-dispense-create.json';
const STOP = 'device-dispense-stop.json';
const COMPLETE = 'device-dispense-complete.json';
const MARK_IN_ERROR = 'device-dispense-mark-in-error.json';
const DETAILS = 'device-dispense-get-details.json';
const BY_PATIENT = 'device-dispense-search-by-patient.json';
const BY_LEGAL_ENTITY = 'device-dispense-search-by-legal-entity.json';
const JOBS = 'jobs-get-details.json';
const SIGNED_COMPLETE = 'signed-payload-device-dispense-complete.json';
const SIGNED_MARK_IN_ERROR = 'signed-payload-device-dispense-mark-in-error.json';

const markInErrorReason = { coding: [{ system: 'device_dispense_mark_in_error_reasons', code: 'incorrect_device' }] };

/** A deep copy with a change, for documents that must fail. */
const changed = <T>(value: T, change: (copy: T) => void): T => {
  const copy = structuredClone(value);
  change(copy);
  return copy;
};

describe('the schema files and relaxed()', () => {
  it('every operation file loads and has the shape the README describes', () => {
    for (const file of [CREATE, STOP, COMPLETE, MARK_IN_ERROR, DETAILS, BY_PATIENT, BY_LEGAL_ENTITY, JOBS, SIGNED_COMPLETE, SIGNED_MARK_IN_ERROR]) {
      const operation = loadOperation(file);
      expect(operation.method).toMatch(/^(GET|POST|PATCH)$/);
      expect(Object.keys(operation.responses).length).toBeGreaterThan(0);
    }
  });

  it('the raw create schema refuses a valid body only because of the artifacts', () => {
    const errors = schemaErrors(requestSchema(CREATE), createBody(newId()));
    // (b) `device` is refused by the closed allOf member, (a) the example enums refuse other values.
    expect(errors).toEqual(expect.arrayContaining([expect.stringMatching(/^\/details\/0 additionalProperties \(device\)/)]));
    expect(
      schemaErrors(
        requestSchema(CREATE),
        changed(createBody(newId()), (b) => (b.details[0]!.sell_price = 20)),
      ),
    ).toEqual(expect.arrayContaining([expect.stringMatching(/^\/details\/0\/sell_price enum/)]));
    expect(
      relaxedSchemaErrors(
        requestSchema(CREATE),
        changed(createBody(newId()), (b) => (b.details[0]!.sell_price = 20)),
      ),
    ).toEqual([]);
  });

  it('relaxed() does not change its input', () => {
    const schema = requestSchema(CREATE);
    const before = JSON.stringify(schema);
    relaxed(schema);
    expect(JSON.stringify(schema)).toBe(before);
  });

  it('relaxed() changes nothing but single-value enums and the names added beside a closed allOf member', () => {
    const differences: string[] = [];
    const walk = (a: unknown, b: unknown, at: string) => {
      if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
        const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
        for (const key of keys) walk((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], `${at}/${key}`);
      } else if (a !== b) differences.push(`${at}: ${JSON.stringify(a)} → ${JSON.stringify(b)}`);
    };
    for (const file of [CREATE, STOP, COMPLETE, MARK_IN_ERROR, DETAILS, BY_PATIENT, BY_LEGAL_ENTITY, JOBS, SIGNED_COMPLETE, SIGNED_MARK_IN_ERROR]) {
      const operation = loadOperation(file);
      const schemas: Schema[] = [
        ...(operation.requestBody ? [operation.requestBody.schema] : []),
        ...Object.values(operation.responses).flatMap((s) => (s === null ? [] : [s])),
      ];
      for (const schema of schemas) walk(schema, relaxed(schema), file);
    }
    for (const difference of differences) expect(difference).toMatch(/(\/enum: \[[^,]*\] → undefined|\/properties\/(device|device_code): undefined → \{\})$/);
    expect(differences.some((d) => /\/properties\/device: undefined/.test(d))).toBe(true);
  });

  describe('relaxed() still refuses a wrong document', () => {
    const schema = requestSchema(CREATE);
    it('accepts the fixture body', () => expect(relaxedSchemaErrors(schema, createBody(newId()))).toEqual([]));
    it('accepts a detail with device_code instead of device', () => {
      const body = changed(createBody(newId()), (b) => {
        const detail = b.details[0] as Record<string, unknown>;
        delete detail.device;
        detail.device_code = { coding: [{ system: 'device_definition_classification_type', code: '30221' }] };
      });
      expect(relaxedSchemaErrors(schema, body)).toEqual([]);
    });
    it('a missing required field', () => {
      const body = changed(createBody(newId()), (b) => delete (b as Partial<typeof b>).based_on);
      expect(relaxedSchemaErrors(schema, body)).toEqual([expect.stringMatching(/^\/ required: must have required property 'based_on'/)]);
    });
    it('a wrong type', () => {
      expect(relaxedSchemaErrors(schema, createBody(newId(), { primary_source: 'yes' }))).toEqual([expect.stringMatching(/^\/primary_source type/)]);
      expect(
        relaxedSchemaErrors(
          schema,
          changed(createBody(newId()), (b) => (b.details[0]!.quantity.value = '10' as unknown as number)),
        ),
      ).toEqual([expect.stringMatching(/^\/details\/0\/quantity\/value type/)]);
    });
    it('a property the closed detail schema does not know', () => {
      const body = changed(createBody(newId()), (b) => Object.assign(b.details[0]!, { reimbursement: 1 }));
      expect(relaxedSchemaErrors(schema, body)).toEqual([expect.stringMatching(/^\/details\/0 additionalProperties \(reimbursement\)/)]);
    });
    it('a detail with neither device nor device_code, or with both', () => {
      const neither = changed(createBody(newId()), (b) => delete (b.details[0] as Record<string, unknown>).device);
      expect(relaxedSchemaErrors(schema, neither)).toEqual(expect.arrayContaining([expect.stringMatching(/^\/details\/0 oneOf/)]));
      const both = changed(createBody(newId()), (b) => Object.assign(b.details[0]!, { device_code: { coding: [{ system: 'x', code: 'y' }] } }));
      expect(relaxedSchemaErrors(schema, both)).toEqual(expect.arrayContaining([expect.stringMatching(/^\/details\/0 oneOf/)]));
    });
    it('a multi-value enum is kept (meta.type)', () => {
      const body = { meta: { code: 202, url: 'x', type: 'dict', request_id: 'r' }, data: { status: 'pending' } };
      expect(relaxedSchemaErrors(responseSchema(CREATE, 202), body)).toEqual([expect.stringMatching(/^\/meta\/type enum/)]);
    });
    it('a missing required field of a response (details without note)', () => {
      const schema200 = responseSchema(DETAILS, 200);
      const body = {
        meta: { code: 200, url: 'x', type: 'object', request_id: 'r' },
        data: {
          id: 'x',
          status: 'in_progress',
          subject: { ...ref('patient', 'p'), display_value: 'null' },
          primary_source: true,
          details: [],
          inserted_at: 'a',
          inserted_by: 'b',
          updated_at: 'c',
          updated_by: 'd',
        },
      };
      expect(relaxedSchemaErrors(schema200, body)).toEqual([expect.stringMatching(/^\/data required: must have required property 'note'/)]);
    });
  });
});

/** Reference data with fresh device requests like the fixture's, one per test that needs one. */
function dataWith(requestIds: string[]): ReferenceDataFile {
  const data = referenceData();
  const template = data.device_requests.find((r) => r.id === ids.deviceRequest)!;
  data.device_requests.push(...requestIds.map((id) => ({ ...template, id })));
  return data;
}
const basedOn = (requestId: string) => ({ based_on: ref('device_request', requestId) });

describe.each(testBackends())('our HTTP requests and responses against the official schemas on %s', (backend) => {
  /** One fresh device request per test, so no test depends on another's dispenses. */
  const requests = {
    create: newId(),
    details: newId(),
    search: newId(),
    stop: newId(),
    failing: newId(),
    wrongCode: newId(),
    complete: newId(),
    markInError: newId(),
  };
  let t: TestServer;
  let auth: string;
  beforeAll(async () => {
    t = await startTestServer({ backend, data: dataWith(Object.values(requests)) });
    auth = `Bearer ${await t.token()}`;
  }, SETUP_TIMEOUT_MS);
  afterAll(async () => t?.close());

  const base = `/api/patients/${ids.patient}/device_dispenses`;
  const get = (path: string) => request(t.app).get(path).set('authorization', auth);
  const patch = (id: string, action: string, body?: object) => {
    const req = request(t.app).patch(`${base}/${id}/actions/${action}`).set('authorization', auth);
    return body ? req.send(body) : req;
  };
  /** Asserts the body validates (relaxed) and shows the failing paths and keywords if not. */
  const expectValid = (schema: Schema, body: unknown) => expect(relaxedSchemaErrors(schema, body)).toEqual([]);

  async function created(requestId: string, overrides: Record<string, unknown> = {}) {
    const id = newId();
    const accepted = await request(t.app)
      .post(base)
      .set('authorization', auth)
      .send(createBody(id, { ...basedOn(requestId), ...overrides }));
    expect(accepted.status).toBe(202);
    const job = await t.waitForJob(accepted.body.data.links[0].href);
    expect(job.status).toBe(303);
    return id;
  }

  it('create: the request body and the 202; the job pending (200), then processed (303)', async () => {
    const id = newId();
    const body = createBody(id, basedOn(requests.create));
    expectValid(requestSchema(CREATE), body);

    await t.server.worker.stop();
    let href: string;
    try {
      const accepted = await request(t.app).post(base).set('authorization', auth).send(body);
      expect(accepted.status).toBe(202);
      expectValid(responseSchema(CREATE, 202), accepted.body);
      href = accepted.body.data.links[0].href;

      const pending = await get(href);
      expect(pending.status).toBe(200);
      expect(pending.body.data.status).toBe('pending');
      expectValid(responseSchema(JOBS, 200), pending.body);
    } finally {
      t.server.worker.start();
    }
    const processed = await t.waitForJob(href);
    expect(processed.status).toBe(303);
    expect(processed.body.data.status).toBe('processed');
    expectValid(responseSchema(JOBS, 303), processed.body);
  });

  it('GET details (200) of an in_progress dispense (with a program device), and 404', async () => {
    const detail = { ...createBody('x').details[0]!, program_device: ref('program_device', newId()) };
    const id = await created(requests.details, { details: [detail] });
    const details = await get(`${base}/${id}`);
    expect(details.status).toBe(200);
    expect(details.body.data.details[0].program_device).toMatchObject({ display_value: 'null' });
    expectValid(responseSchema(DETAILS, 200), details.body);

    const missing = await get(`${base}/${newId()}`);
    expect(missing.status).toBe(404);
    expectValid(responseSchema(DETAILS, 404), missing.body);
    expect(missing.body.error.type).toBe('not_found');
  });

  it('searches (200) in the patient context and the legal entity’s, with paging', async () => {
    await created(requests.search);
    for (const [file, path] of [
      [BY_PATIENT, base],
      [BY_LEGAL_ENTITY, '/api/device_dispenses'],
    ] as const) {
      const found = await get(`${path}?page=1&page_size=2`);
      expect(found.status).toBe(200);
      expect(found.body).toHaveProperty('paging');
      expect(found.body.data.length).toBeGreaterThan(0);
      expectValid(responseSchema(file, 200), found.body);
    }
  });

  it('stop: 202, the job processed (303); stopping again fails 409; stopping what does not exist fails 404', async () => {
    const id = await created(requests.stop);
    const accepted = await patch(id, 'stop');
    expect(accepted.status).toBe(202);
    expectValid(responseSchema(STOP, 202), accepted.body);
    const processed = await t.waitForJob(accepted.body.data.links[0].href);
    expect(processed.status).toBe(303);
    expectValid(responseSchema(JOBS, 303), processed.body);

    const again = await t.waitForJob((await patch(id, 'stop')).body.data.links[0].href);
    expect(again.status).toBe(409);
    expect(again.body.data.error).toEqual({ type: 'request_conflict', message: 'Device dispense in status stopped cannot be stopped' });
    expectValid(responseSchema(JOBS, 409), again.body);

    const missing = await t.waitForJob((await patch(newId(), 'stop')).body.data.links[0].href);
    expect(missing.status).toBe(404);
    expect(missing.body).toHaveProperty('data.error.type', 'not_found');
    expectValid(responseSchema(JOBS, 404), missing.body);

    // The stopped dispense's details still validate.
    expectValid(responseSchema(DETAILS, 200), (await get(`${base}/${id}`)).body);
  });

  it('a create that fails its checks: job 422 (other active dispense) and 403 (incorrect code)', async () => {
    await created(requests.failing);
    const accepted = await request(t.app)
      .post(base)
      .set('authorization', auth)
      .send(createBody(newId(), basedOn(requests.failing)));
    const failed = await t.waitForJob(accepted.body.data.links[0].href);
    expect(failed.status).toBe(422);
    expect(failed.body.data.error.message).toBe('Other active device dispense already exist.');
    expectValid(responseSchema(JOBS, 422), failed.body);

    const wrongCode = await request(t.app)
      .post(base)
      .set('authorization', auth)
      .send(createBody(newId(), { ...basedOn(requests.wrongCode), verification_code: '0000' }));
    const forbidden = await t.waitForJob(wrongCode.body.data.links[0].href);
    expect(forbidden.status).toBe(403);
    expectValid(responseSchema(JOBS, 403), forbidden.body);
  });

  it('complete: the signed payload built from GET details, the request, the 202, and the completed dispense', async () => {
    const id = await created(requests.complete);
    const current = (await get(`${base}/${id}`)).body.data;
    const payload = { ...current, status: 'completed', when_handed_over: new Date().toISOString(), payment_amount: 50, payment_id: 'R-1' };
    expectValid(requestSchema(SIGNED_COMPLETE), payload);
    // The schema bites: without what completing adds, the payload is refused.
    expect(relaxedSchemaErrors(requestSchema(SIGNED_COMPLETE), { ...current, status: 'completed' })).toEqual([
      expect.stringMatching(/^\/ required: must have required property 'when_handed_over'/),
      expect.stringMatching(/^\/ required: must have required property 'payment_amount'/),
    ]);

    const body = { signed_data: await t.sign(payload) };
    expectValid(requestSchema(COMPLETE), body);
    const accepted = await patch(id, 'complete', body);
    expect(accepted.status).toBe(202);
    expectValid(responseSchema(COMPLETE, 202), accepted.body);
    const processed = await t.waitForJob(accepted.body.data.links[0].href);
    expect(processed.status).toBe(303);
    expectValid(responseSchema(JOBS, 303), processed.body);

    const completed = await get(`${base}/${id}`);
    expect(completed.body.data).toMatchObject({ status: 'completed', payment_amount: 50, payment_id: 'R-1' });
    expectValid(responseSchema(DETAILS, 200), completed.body);
  });

  it('mark in error: the signed payload built from GET details, the request, the 202, and the dispense with its status_reason', async () => {
    const id = await created(requests.markInError);
    const current = (await get(`${base}/${id}`)).body.data;
    const payload = { ...current, status: 'entered_in_error', status_reason: markInErrorReason };
    expectValid(requestSchema(SIGNED_MARK_IN_ERROR), payload);

    const body = { signed_data: await t.sign(payload) };
    expectValid(requestSchema(MARK_IN_ERROR), body);
    const accepted = await patch(id, 'mark_in_error', body);
    expect(accepted.status).toBe(202);
    expectValid(responseSchema(MARK_IN_ERROR, 202), accepted.body);
    const processed = await t.waitForJob(accepted.body.data.links[0].href);
    expect(processed.status).toBe(303);

    const marked = await get(`${base}/${id}`);
    expect(marked.body.data).toMatchObject({ status: 'entered_in_error', status_reason: markInErrorReason });
    expectValid(responseSchema(DETAILS, 200), marked.body);
    // Entered-in-error dispenses validate in the searches too.
    expectValid(responseSchema(BY_PATIENT, 200), (await get(`${base}?status=entered_in_error`)).body);
  });
});
