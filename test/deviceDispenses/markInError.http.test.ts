/**
 * Mark in error Device dispense (seed 001), through HTTP only: every branch of its Authorization and
 * Validations sections with the seed's code and message, in the seed's order. The signature checks
 * follow contract.md ("Digitally signed requests").
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { ALL_SCOPES } from '../../src/auth/scopes.js';
import { issueSignerCertificate } from '../../src/signatures/devPki.js';
import { ids, OTHER_TAX_ID, referenceData, TAX_ID } from '../support/fixtures.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import {
  badSignatures,
  deviceRequestPool,
  dispenseApi,
  dispensesPath,
  expectInvalidAccessToken,
  expectJobBadRequest,
  expectJobConflict,
  expectJobNotFound,
  expectJobUnprocessable,
  expectMissingScope,
  expectProcessed,
  expectSchemaError,
  expiredSigner,
  expiredToken,
  markInErrorPayload,
  markInErrorReason,
  notYetValidSigner,
  scopesWithout,
  SIGNED_CONTENT,
  untrustedSigner,
} from './helpers.js';

const SCOPE = 'device_dispense:mark_in_error';
const ENUM = 'value is not allowed in enum';
const MISMATCH = "Signed content doesn't match with previously created device dispense";

describe.each(testBackends())('Mark in error device dispense on %s', (backend) => {
  const data = referenceData();
  const fresh = deviceRequestPool(data, 60);
  let t: TestServer;
  let api: ReturnType<typeof dispenseApi>;
  beforeAll(async () => {
    t = await startTestServer({ data, backend });
    api = dispenseApi(t);
  });
  afterAll(async () => t.close());

  type Dispense = Record<string, unknown> & { id: string };
  /** Sends signed_data for `dispense`, as `claims` (default: the pharmacist who created it); the job's answer. */
  const markAs = async (dispense: { id: string }, signedData: string, claims: Parameters<TestServer['token']>[0] = {}, patientId?: string) => {
    const token = await t.token(claims);
    return api.action(dispense.id, 'mark_in_error', { signed_data: signedData }, { token, ...(patientId ? { patientId } : {}) });
  };
  const signed = (dispense: Dispense, overrides: Record<string, unknown> = {}) => t.sign(markInErrorPayload(dispense, overrides));
  const statusOf = async (id: string) => (await api.get(id)).body.data.status;

  describe('Authorization and Validate request (synchronous)', () => {
    it('401 "Invalid access token" without a token, with a malformed one and with an expired one', async () => {
      const dispense = await api.createInProgress(fresh());
      const body = { signed_data: await signed(dispense) };
      const url = `${dispensesPath()}/${dispense.id}/actions/mark_in_error`;
      expectInvalidAccessToken(await request(t.app).patch(url).send(body));
      expectInvalidAccessToken(await api.patchAction(dispense.id, 'mark_in_error', body, { token: 'not-a-jwt' }));
      expectInvalidAccessToken(await api.patchAction(dispense.id, 'mark_in_error', body, { token: await expiredToken(t) }));
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('403 "…Missing allowances: device_dispense:mark_in_error" without the scope', async () => {
      const dispense = await api.createInProgress(fresh());
      const token = await t.token({ scope: scopesWithout(ALL_SCOPES, SCOPE) });
      expectMissingScope(await api.patchAction(dispense.id, 'mark_in_error', { signed_data: await signed(dispense) }, { token }), SCOPE);
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('422 validation_failed when signed_data is missing, empty or not a string', async () => {
      const dispense = await api.createInProgress(fresh());
      expectSchemaError(await api.patchAction(dispense.id, 'mark_in_error', {}), '$.signed_data', 'required', 'required property signed_data was not present');
      expectSchemaError(
        await api.patchAction(dispense.id, 'mark_in_error', { signed_data: 42 }),
        '$.signed_data',
        'cast',
        'type mismatch. Expected String but got Integer',
      );
      const empty = await api.patchAction(dispense.id, 'mark_in_error', { signed_data: '' });
      expect(empty.status).toBe(422);
      expect(empty.body.error.invalid).toEqual([expect.objectContaining({ entry: '$.signed_data', rules: [expect.objectContaining({ rule: 'length' })] })]);
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });
  });

  describe('Validate Legal entity', () => {
    it('409 "Invalid LegalEntity type"', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobConflict(await markAs(dispense, await signed(dispense), { client_id: ids.wrongTypeLegalEntity }), 'Invalid LegalEntity type');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('409 "client_id refers to legal entity that is not active" for an inactive and for an unknown legal entity', async () => {
      const dispense = await api.createInProgress(fresh());
      const signedData = await signed(dispense);
      expectJobConflict(await markAs(dispense, signedData, { client_id: ids.inactiveLegalEntity }), 'client_id refers to legal entity that is not active');
      expectJobConflict(await markAs(dispense, signedData, { client_id: ids.unknownLegalEntity }), 'client_id refers to legal entity that is not active');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('409 "Device dispense belongs to another legal entity"', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobConflict(await markAs(dispense, await signed(dispense), { client_id: ids.otherLegalEntity }), 'Device dispense belongs to another legal entity');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('404 not_found for an unknown dispense and for a dispense of another patient than the URL', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobNotFound(await markAs({ id: newId() }, await signed({ ...dispense, id: newId() })));
      expectJobNotFound(await markAs(dispense, await signed(dispense), {}, ids.otherPatient));
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });
  });

  describe('Validate digital signature', () => {
    it('400 "Invalid signed content": the document unsigned, garbage, a JWS with alg none', async () => {
      const dispense = await api.createInProgress(fresh());
      const payload = markInErrorPayload(dispense);
      const signer = await t.signer();
      expectJobBadRequest(await markAs(dispense, badSignatures.jsonString(payload)), SIGNED_CONTENT.invalid);
      expectJobBadRequest(await markAs(dispense, Buffer.from(JSON.stringify(payload)).toString('base64')), SIGNED_CONTENT.invalid);
      expectJobBadRequest(await markAs(dispense, badSignatures.garbage()), SIGNED_CONTENT.invalid);
      expectJobBadRequest(await markAs(dispense, badSignatures.algNone(payload, signer)), SIGNED_CONTENT.invalid);
      expectJobBadRequest(await markAs(dispense, badSignatures.algNoneWithSignature(payload, signer)), SIGNED_CONTENT.invalid);
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('400 "Signer certificate is not trusted" for a certificate of an untrusted CA', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobBadRequest(await markAs(dispense, await t.sign(markInErrorPayload(dispense), await untrustedSigner())), SIGNED_CONTENT.untrusted);
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('400 "Signer certificate is expired or not yet valid" (DS is valid and not expired)', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobBadRequest(await markAs(dispense, await t.sign(markInErrorPayload(dispense), await expiredSigner(t))), SIGNED_CONTENT.expired);
      expectJobBadRequest(await markAs(dispense, await t.sign(markInErrorPayload(dispense), await notYetValidSigner(t))), SIGNED_CONTENT.expired);
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('400 "Signature is invalid" when the payload was changed after signing', async () => {
      const dispense = await api.createInProgress(fresh());
      const tampered = badSignatures.tampered(await signed(dispense), markInErrorPayload(dispense, { status_reason: markInErrorReason('incorrect_patient') }));
      expectJobBadRequest(await markAs(dispense, tampered), SIGNED_CONTENT.badSignature);
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('422 "Does not match the signer drfo" when someone else signed', async () => {
      const dispense = await api.createInProgress(fresh());
      const res = await markAs(dispense, await t.sign(markInErrorPayload(dispense), await t.signer(OTHER_TAX_ID)));
      expectJobUnprocessable(res, 'Does not match the signer drfo', '$.signed_data');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('422 "Invalid drfo" when the certificate carries no DRFO', async () => {
      const dispense = await api.createInProgress(fresh());
      const noDrfo = await issueSignerCertificate(t.ca, { taxId: TAX_ID, serialNumberAttribute: null });
      expectJobUnprocessable(await markAs(dispense, await t.sign(markInErrorPayload(dispense), noDrfo)), 'Invalid drfo', '$.signed_data');
    });
  });

  describe('Validate transition', () => {
    it("409 'Device dispense in status completed cannot be marked in error'", async () => {
      const completed = await api.complete(await api.createInProgress(fresh()));
      expectJobConflict(await markAs(completed, await signed(completed)), 'Device dispense in status completed cannot be marked in error');
      expect(await statusOf(completed.id)).toBe('completed');
    });

    it("409 'Device dispense in status entered_in_error cannot be marked in error'", async () => {
      const marked = await api.markInError(await api.createInProgress(fresh()));
      expectJobConflict(await markAs(marked, await signed(marked)), 'Device dispense in status entered_in_error cannot be marked in error');
    });
  });

  describe('Validate status and status reason', () => {
    it('422 "value is not allowed in enum" at $.status when the signed status is not entered_in_error', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobUnprocessable(await markAs(dispense, await signed(dispense, { status: 'completed' })), ENUM, '$.status', 'inclusion');
      expectJobUnprocessable(await markAs(dispense, await signed(dispense, { status: 'in_progress' })), ENUM, '$.status', 'inclusion');
      expectJobUnprocessable(await markAs(dispense, await signed(dispense, { status: undefined })), ENUM, '$.status', 'inclusion');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('422 "value is not allowed in enum" when status_reason is not from device_dispense_mark_in_error_reasons', async () => {
      const dispense = await api.createInProgress(fresh());
      const entry = '$.status_reason.coding[0].code';
      expectJobUnprocessable(await markAs(dispense, await signed(dispense, { status_reason: markInErrorReason('changed_my_mind') })), ENUM, entry, 'inclusion');
      expectJobUnprocessable(await markAs(dispense, await signed(dispense, { status_reason: undefined })), ENUM, entry, 'inclusion');
      expectJobUnprocessable(await markAs(dispense, await signed(dispense, { status_reason: { coding: [] } })), ENUM, entry, 'inclusion');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });
  });

  describe('Validate content', () => {
    it(`422 "${MISMATCH}" when the note was changed`, async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobUnprocessable(await markAs(dispense, await signed(dispense, { note: 'Інша примітка' })), MISMATCH, '$.signed_data');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it(`422 "${MISMATCH}" when the quantity was changed`, async () => {
      const dispense = await api.createInProgress(fresh());
      const details = structuredClone(dispense.details) as { quantity: { value: number } }[];
      details[0]!.quantity.value = 20;
      expectJobUnprocessable(await markAs(dispense, await signed(dispense, { details })), MISMATCH, '$.signed_data');
    });

    it(`422 "${MISMATCH}" when a field is left out or added`, async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobUnprocessable(await markAs(dispense, await signed(dispense, { performer: undefined })), MISMATCH, '$.signed_data');
      expectJobUnprocessable(await markAs(dispense, await signed(dispense, { payment_id: 'R-1' })), MISMATCH, '$.signed_data');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });
  });

  describe('Service logic', () => {
    it('marks an in_progress dispense in error: GET shows entered_in_error with status_reason, updated_by/updated_at', async () => {
      const dispense = await api.createInProgress(fresh());
      const reason = { ...markInErrorReason('incorrect_patient'), text: 'Не тому пацієнту' };
      // Keys in another order than GET gives them: the content is compared, not the bytes.
      const payload = Object.fromEntries(Object.entries(markInErrorPayload(dispense, { status_reason: reason })).reverse());
      expectProcessed(await markAs(dispense, await t.sign(payload)), dispense.id);
      const shown = (await api.get(dispense.id)).body.data;
      expect(shown).toMatchObject({ status: 'entered_in_error', status_reason: reason, updated_by: ids.user, inserted_at: dispense.inserted_at });
      expect(Date.parse(shown.updated_at)).toBeGreaterThanOrEqual(Date.parse(String(dispense.updated_at)));
      expect(shown).not.toHaveProperty('signed_content_links');
    });

    it('a stopped dispense can be marked in error (every status but completed and entered_in_error)', async () => {
      const stopped = await api.stop((await api.createInProgress(fresh())).id);
      expect(stopped.status).toBe('stopped');
      expectProcessed(await markAs(stopped, await signed(stopped)), stopped.id);
      expect((await api.get(stopped.id)).body.data).toMatchObject({ status: 'entered_in_error', status_reason: markInErrorReason() });
    });
  });

  describe("the seed's order: the first broken rule answers", () => {
    it('wrong-type legal entity and garbage signed_data → "Invalid LegalEntity type"', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobConflict(await markAs(dispense, badSignatures.garbage(), { client_id: ids.wrongTypeLegalEntity }), 'Invalid LegalEntity type');
    });

    it('a legal entity of a wrong type that is also closed → "Invalid LegalEntity type" (type before status)', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobConflict(await markAs(dispense, await signed(dispense), { client_id: ids.closedWrongTypeLegalEntity }), 'Invalid LegalEntity type');
    });

    it('inactive legal entity on a completed dispense → "client_id refers to legal entity that is not active"', async () => {
      const completed = await api.complete(await api.createInProgress(fresh()));
      expectJobConflict(
        await markAs(completed, badSignatures.garbage(), { client_id: ids.inactiveLegalEntity }),
        'client_id refers to legal entity that is not active',
      );
    });

    it('another legal entity and garbage signed_data → "Device dispense belongs to another legal entity"', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobConflict(
        await markAs(dispense, badSignatures.garbage(), { client_id: ids.otherLegalEntity }),
        'Device dispense belongs to another legal entity',
      );
    });

    it('garbage signed_data on a completed dispense → 400 (signature before transition)', async () => {
      const completed = await api.complete(await api.createInProgress(fresh()));
      expectJobBadRequest(await markAs(completed, badSignatures.garbage()), SIGNED_CONTENT.invalid);
    });

    it('someone else\'s signature on an entered_in_error dispense → 422 "Does not match the signer drfo"', async () => {
      const marked = await api.markInError(await api.createInProgress(fresh()));
      expectJobUnprocessable(await markAs(marked, await t.sign(markInErrorPayload(marked), await t.signer(OTHER_TAX_ID))), 'Does not match the signer drfo');
    });

    it('completed dispense with a wrong status and reason in the content → 409 transition', async () => {
      const completed = await api.complete(await api.createInProgress(fresh()));
      const res = await markAs(completed, await signed(completed, { status: 'stopped', status_reason: markInErrorReason('nope') }));
      expectJobConflict(res, 'Device dispense in status completed cannot be marked in error');
    });

    it('wrong status and wrong reason → the enum error is about $.status', async () => {
      const dispense = await api.createInProgress(fresh());
      const res = await markAs(dispense, await signed(dispense, { status: 'stopped', status_reason: markInErrorReason('nope') }));
      expectJobUnprocessable(res, ENUM, '$.status');
    });

    it('wrong reason and changed content → the enum error about the reason', async () => {
      const dispense = await api.createInProgress(fresh());
      const res = await markAs(dispense, await signed(dispense, { status_reason: markInErrorReason('nope'), note: 'змінено' }));
      expectJobUnprocessable(res, ENUM, '$.status_reason.coding[0].code');
    });
  });
});
