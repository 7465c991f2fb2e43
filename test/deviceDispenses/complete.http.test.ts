/**
 * Complete Device dispense (spec §1.3.2, RС_[UPD] Complete Device dispense), through HTTP only: every
 * branch of src/commands/completeDeviceDispense.ts with its code and message, in the page's order
 * (signature, legal entity, dispense, payment, when_handed_over, device request, author, transition,
 * status, content).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { ALL_SCOPES } from '../../src/auth/scopes.js';
import { ids, OTHER_TAX_ID, referenceData } from '../support/fixtures.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import {
  badSignatures,
  completePayload,
  deviceRequestPool,
  dispenseApi,
  dispensesPath,
  expectInvalidAccessToken,
  expectJobBadRequest,
  expectJobConflict,
  expectJobForbidden,
  expectJobNotFound,
  expectJobUnprocessable,
  expectMissingScope,
  expectProcessed,
  expectSchemaError,
  expiredSigner,
  expiredToken,
  notYetValidSigner,
  scopesWithout,
  SIGNED_CONTENT,
  untrustedSigner,
} from './helpers.js';

const SCOPE = 'device_dispense:complete';
const ENUM = 'value is not allowed in enum';
const MISMATCH = "Signed content doesn't match with previously created device dispense";
const NOT_WITHIN = 'when_handed_over is not within the device request dispense period';
const DAY_MS = 24 * 3600 * 1000;

describe.each(testBackends())('Complete device dispense on %s', (backend) => {
  const data = referenceData();
  const fresh = deviceRequestPool(data, 60);
  /** Under a program, without a quantity: stays active after a completed dispense. */
  const freshWithoutQuantity = deviceRequestPool(data, 5, { quantity: null });
  // A dispense period that starts tomorrow (dispense_valid_from): a hand-over today is outside it.
  const freshNotYetDispensable = deviceRequestPool(data, 2, { dispense_valid_from: new Date(Date.now() + 2 * 24 * 3600 * 1000).toISOString().slice(0, 10) });
  /** Without a program (no payment data required), no quantity, no verification code. */
  const freshWithoutProgram = deviceRequestPool(data, 5, { program_id: null, quantity: null, verification_code: null });
  let t: TestServer;
  let api: ReturnType<typeof dispenseApi>;
  beforeAll(async () => {
    t = await startTestServer({ data, backend });
    api = dispenseApi(t);
  });
  afterAll(async () => t.close());

  type Dispense = Record<string, unknown> & { id: string };
  const completeAs = async (dispense: { id: string }, signedData: string, claims: Parameters<TestServer['token']>[0] = {}, patientId?: string) => {
    const token = await t.token(claims);
    return api.action(dispense.id, 'complete', { signed_data: signedData }, { token, ...(patientId ? { patientId } : {}) });
  };
  const signed = (dispense: Dispense, overrides: Record<string, unknown> = {}) => t.sign(completePayload(dispense, overrides));
  const statusOf = async (id: string) => (await api.get(id)).body.data.status;
  const otherUser = { sub: ids.otherUser };
  const signedByOtherUser = async (dispense: Dispense, overrides: Record<string, unknown> = {}) =>
    t.sign(completePayload(dispense, overrides), await t.signer(OTHER_TAX_ID));

  describe('Authorization and request schema (synchronous)', () => {
    it('401 "Invalid access token" without a token, with a malformed one and with an expired one', async () => {
      const dispense = await api.createInProgress(fresh());
      const body = { signed_data: await signed(dispense) };
      expectInvalidAccessToken(await request(t.app).patch(`${dispensesPath()}/${dispense.id}/actions/complete`).send(body));
      expectInvalidAccessToken(await api.patchAction(dispense.id, 'complete', body, { token: 'not-a-jwt' }));
      expectInvalidAccessToken(await api.patchAction(dispense.id, 'complete', body, { token: await expiredToken(t) }));
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('403 "…Missing allowances: device_dispense:complete" without the scope', async () => {
      const dispense = await api.createInProgress(fresh());
      const token = await t.token({ scope: scopesWithout(ALL_SCOPES, SCOPE) });
      expectMissingScope(await api.patchAction(dispense.id, 'complete', { signed_data: await signed(dispense) }, { token }), SCOPE);
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('422 validation_failed (rule required) without signed_data', async () => {
      const dispense = await api.createInProgress(fresh());
      expectSchemaError(await api.patchAction(dispense.id, 'complete', {}), '$.signed_data', 'required', 'required property signed_data was not present');
      expectSchemaError(
        await api.patchAction(dispense.id, 'complete', { signed_data: null }),
        '$.signed_data',
        'cast',
        'type mismatch. Expected String but got Null',
      );
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });
  });

  describe('Validate digital signature', () => {
    it('400 "Invalid signed content": the document unsigned, garbage, a JWS with alg none', async () => {
      const dispense = await api.createInProgress(fresh());
      const payload = completePayload(dispense);
      const signer = await t.signer();
      expectJobBadRequest(await completeAs(dispense, badSignatures.jsonString(payload)), SIGNED_CONTENT.invalid);
      expectJobBadRequest(await completeAs(dispense, badSignatures.garbage()), SIGNED_CONTENT.invalid);
      expectJobBadRequest(await completeAs(dispense, badSignatures.algNone(payload, signer)), SIGNED_CONTENT.invalid);
      expectJobBadRequest(await completeAs(dispense, badSignatures.algNoneWithSignature(payload, signer)), SIGNED_CONTENT.invalid);
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('400 "Signer certificate is not trusted"', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobBadRequest(await completeAs(dispense, await t.sign(completePayload(dispense), await untrustedSigner())), SIGNED_CONTENT.untrusted);
    });

    it('400 "Signer certificate is expired or not yet valid"', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobBadRequest(await completeAs(dispense, await t.sign(completePayload(dispense), await expiredSigner(t))), SIGNED_CONTENT.expired);
      expectJobBadRequest(await completeAs(dispense, await t.sign(completePayload(dispense), await notYetValidSigner(t))), SIGNED_CONTENT.expired);
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('400 "Signature is invalid" for a payload changed after signing', async () => {
      const dispense = await api.createInProgress(fresh());
      const tampered = badSignatures.tampered(await signed(dispense), completePayload(dispense, { payment_amount: 1 }));
      expectJobBadRequest(await completeAs(dispense, tampered), SIGNED_CONTENT.badSignature);
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('422 "Does not match the signer drfo" when someone else signed', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobUnprocessable(await completeAs(dispense, await signedByOtherUser(dispense)), 'Does not match the signer drfo', '$.signed_data');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('403 "User is not allowed to this action by client_id" for a user without a party', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobForbidden(await completeAs(dispense, await signed(dispense), { sub: ids.userWithoutParty }), 'User is not allowed to this action by client_id');
    });
  });

  describe('Validate legal entity and device dispense', () => {
    it("409 'client_id refers to legal entity that is not active'", async () => {
      const dispense = await api.createInProgress(fresh());
      const signedData = await signed(dispense);
      expectJobConflict(await completeAs(dispense, signedData, { client_id: ids.inactiveLegalEntity }), 'client_id refers to legal entity that is not active');
      expectJobConflict(await completeAs(dispense, signedData, { client_id: ids.unknownLegalEntity }), 'client_id refers to legal entity that is not active');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it("404 not_found for an unknown dispense, another legal entity's and another patient's", async () => {
      const dispense = await api.createInProgress(fresh());
      const signedData = await signed(dispense);
      expectJobNotFound(await completeAs({ id: newId() }, signedData));
      expectJobNotFound(await completeAs(dispense, signedData, { client_id: ids.otherLegalEntity }));
      expectJobNotFound(await completeAs(dispense, signedData, {}, ids.otherPatient));
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });
  });

  describe('Validate payment (dispense under a medical program)', () => {
    it('422 "Required property payment_amount was not present"', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobUnprocessable(
        await completeAs(dispense, await signed(dispense, { payment_amount: undefined })),
        'Required property payment_amount was not present',
        '$.payment_amount',
        'required',
      );
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('422 "Required property payment_id was not present"', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobUnprocessable(
        await completeAs(dispense, await signed(dispense, { payment_id: undefined })),
        'Required property payment_id was not present',
        '$.payment_id',
        'required',
      );
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('a dispense without a program completes without payment data', async () => {
      const dispense = await api.createInProgress(freshWithoutProgram(), { program: undefined, verification_code: undefined });
      expect(dispense).not.toHaveProperty('program');
      expectProcessed(await completeAs(dispense, await signed(dispense, { payment_amount: undefined, payment_id: undefined })), dispense.id);
      const shown = (await api.get(dispense.id)).body.data;
      expect(shown.status).toBe('completed');
      expect(shown).not.toHaveProperty('payment_amount');
      expect(shown).not.toHaveProperty('payment_id');
    });
  });

  describe('Validate when_handed_over', () => {
    it(`422 "${NOT_WITHIN}" when it is before the dispense was created (0001-01-01, or beyond the clock-skew allowance)`, async () => {
      const dispense = await api.createInProgress(fresh());
      for (const when of ['0001-01-01T00:00:00Z', new Date(Date.parse(String(dispense.inserted_at)) - 61_000).toISOString()])
        expectJobUnprocessable(await completeAs(dispense, await signed(dispense, { when_handed_over: when })), NOT_WITHIN, '$.when_handed_over');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it(`422 "${NOT_WITHIN}" when it is before the device request's dispense_valid_from`, async () => {
      const dispense = await api.createInProgress(freshNotYetDispensable());
      expectJobUnprocessable(await completeAs(dispense, await signed(dispense)), NOT_WITHIN, '$.when_handed_over');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it(`422 "${NOT_WITHIN}" when it is in the future`, async () => {
      const dispense = await api.createInProgress(fresh());
      const tomorrow = new Date(Date.now() + DAY_MS).toISOString();
      expectJobUnprocessable(await completeAs(dispense, await signed(dispense, { when_handed_over: tomorrow })), NOT_WITHIN, '$.when_handed_over');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it('422 "Required property when_handed_over was not present" and 422 for a value that is no date-time', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobUnprocessable(
        await completeAs(dispense, await signed(dispense, { when_handed_over: undefined })),
        'Required property when_handed_over was not present',
        '$.when_handed_over',
        'required',
      );
      expectJobUnprocessable(
        await completeAs(dispense, await signed(dispense, { when_handed_over: 'yesterday' })),
        'when_handed_over must be a date-time',
        '$.when_handed_over',
      );
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });
  });

  describe('Validate device request', () => {
    it("409 'Device request is not active' once another dispense of the request (with a quantity) was completed", async () => {
      const deviceRequest = fresh();
      const first = await api.createInProgress(deviceRequest);
      await api.stop(first.id); // makes room for a second dispense on the request
      const second = await api.createInProgress(deviceRequest);
      await api.complete(second); // the request (quantity 10) is now completed
      const stopped = (await api.get(first.id)).body.data;
      // The first dispense is stopped too, but the device request is checked before the transition.
      expectJobConflict(await completeAs(stopped, await signed(stopped)), 'Device request is not active');
      expect(await statusOf(first.id)).toBe('stopped');
    });
  });

  describe('Validate user', () => {
    it("409 'Employee is not an author of device dispense' for another user of the legal entity", async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobConflict(await completeAs(dispense, await signedByOtherUser(dispense), otherUser), 'Employee is not an author of device dispense');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });
  });

  describe('Validate transition and status', () => {
    it("409 'Device dispense in status stopped cannot be completed'", async () => {
      const stopped = await api.stop((await api.createInProgress(fresh())).id);
      expectJobConflict(await completeAs(stopped, await signed(stopped)), 'Device dispense in status stopped cannot be completed');
    });

    it("409 'Device dispense in status entered_in_error cannot be completed'", async () => {
      const marked = await api.markInError(await api.createInProgress(fresh()));
      expectJobConflict(
        await completeAs(marked, await signed(marked, { status_reason: undefined })),
        'Device dispense in status entered_in_error cannot be completed',
      );
    });

    it("409 'Device dispense in status completed cannot be completed' (request without a quantity stays active)", async () => {
      const completed = await api.complete(await api.createInProgress(freshWithoutQuantity()));
      expectJobConflict(await completeAs(completed, await signed(completed, { payment_id: 'R-2' })), 'Device dispense in status completed cannot be completed');
      expect((await api.get(completed.id)).body.data.payment_id).toBe('R-1239804');
    });

    it('422 "value is not allowed in enum" at $.status when the signed status is not completed', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobUnprocessable(await completeAs(dispense, await signed(dispense, { status: 'in_progress' })), ENUM, '$.status', 'inclusion');
      expectJobUnprocessable(await completeAs(dispense, await signed(dispense, { status: 'entered_in_error' })), ENUM, '$.status', 'inclusion');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });
  });

  describe('Validate content', () => {
    it(`422 "${MISMATCH}" when the note was changed`, async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobUnprocessable(await completeAs(dispense, await signed(dispense, { note: 'Інша примітка' })), MISMATCH, '$.signed_data');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });

    it(`422 "${MISMATCH}" when the quantity was changed`, async () => {
      const dispense = await api.createInProgress(fresh());
      const details = structuredClone(dispense.details) as { quantity: { value: number } }[];
      details[0]!.quantity.value = 5;
      expectJobUnprocessable(await completeAs(dispense, await signed(dispense, { details })), MISMATCH, '$.signed_data');
      expect(await statusOf(dispense.id)).toBe('in_progress');
    });
  });

  describe('Service logic', () => {
    it('completes: GET shows completed with when_handed_over, payment, updated_by/updated_at', async () => {
      const dispense = await api.createInProgress(fresh());
      const handedOver = new Date(Date.parse(String(dispense.inserted_at)) + 1000).toISOString();
      expectProcessed(
        await completeAs(dispense, await signed(dispense, { when_handed_over: handedOver, payment_amount: 12.5, payment_id: 'R-77' })),
        dispense.id,
      );
      const shown = (await api.get(dispense.id)).body.data;
      expect(shown).toMatchObject({
        status: 'completed',
        when_handed_over: handedOver,
        payment_amount: 12.5,
        payment_id: 'R-77',
        updated_by: ids.user,
        inserted_at: dispense.inserted_at,
      });
      expect(Date.parse(shown.updated_at)).toBeGreaterThanOrEqual(Date.parse(String(dispense.updated_at)));
      expect(shown).not.toHaveProperty('signed_content_links');
    });
  });

  describe('the order of the method page: the first broken rule answers', () => {
    it('someone else\'s signature for an unknown dispense → 422 "Does not match the signer drfo" (signature first)', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobUnprocessable(await completeAs({ id: newId() }, await signedByOtherUser(dispense)), 'Does not match the signer drfo');
    });

    it('inactive legal entity and an unknown dispense → 409 legal entity', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobConflict(
        await completeAs({ id: newId() }, await signed(dispense), { client_id: ids.inactiveLegalEntity }),
        'client_id refers to legal entity that is not active',
      );
    });

    it("another legal entity's dispense without payment data → 404", async () => {
      const dispense = await api.createInProgress(fresh());
      const content = await signed(dispense, { payment_amount: undefined, payment_id: undefined });
      expectJobNotFound(await completeAs(dispense, content, { client_id: ids.otherLegalEntity }));
    });

    it('neither payment_amount nor payment_id → payment_amount', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobUnprocessable(
        await completeAs(dispense, await signed(dispense, { payment_amount: undefined, payment_id: undefined })),
        'Required property payment_amount was not present',
      );
    });

    it('no payment_id and when_handed_over in the future → payment_id', async () => {
      const dispense = await api.createInProgress(fresh());
      const res = await completeAs(dispense, await signed(dispense, { payment_id: undefined, when_handed_over: new Date(Date.now() + DAY_MS).toISOString() }));
      expectJobUnprocessable(res, 'Required property payment_id was not present');
    });

    it('when_handed_over in the future, signed by another user → when_handed_over', async () => {
      const dispense = await api.createInProgress(fresh());
      const res = await completeAs(dispense, await signedByOtherUser(dispense, { when_handed_over: new Date(Date.now() + DAY_MS).toISOString() }), otherUser);
      expectJobUnprocessable(res, NOT_WITHIN);
    });

    it("another user on a stopped dispense → 'Employee is not an author of device dispense'", async () => {
      const stopped = await api.stop((await api.createInProgress(fresh())).id);
      expectJobConflict(await completeAs(stopped, await signedByOtherUser(stopped), otherUser), 'Employee is not an author of device dispense');
    });

    it('stopped dispense with status in_progress in the content → 409 transition', async () => {
      const stopped = await api.stop((await api.createInProgress(fresh())).id);
      expectJobConflict(await completeAs(stopped, await signed(stopped, { status: 'in_progress' })), 'Device dispense in status stopped cannot be completed');
    });

    it('status not completed and changed note → the enum error', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobUnprocessable(await completeAs(dispense, await signed(dispense, { status: 'stopped', note: 'змінено' })), ENUM, '$.status');
    });
  });

  describe('device request completed while this dispense is still in progress (moves the clock: keep it last)', () => {
    it("409 'Device request is not active'", async () => {
      const deviceRequest = fresh();
      const first = await api.createInProgress(deviceRequest);
      // Past device_dispense_ttl_days an in_progress dispense no longer blocks a new one on its request.
      t.advanceClock((data.config.device_dispense_ttl_days + 1) * DAY_MS);
      const second = await api.createInProgress(deviceRequest);
      await api.complete(second);
      expectJobConflict(await completeAs(first, await signed(first)), 'Device request is not active');
      expect(await statusOf(first.id)).toBe('in_progress');
    });
  });
});
