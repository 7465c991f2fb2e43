/**
 * Employment (trust boundary): every device-dispense method and read requires that the token's user
 * is an active employee of the token's legal entity. Reads answer 403 at once; the async methods fail
 * their job with 403 right after the seed's legal-entity checks (which keep their place and wording);
 * mark in error answers its documented 409.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { NOT_AN_ACTIVE_EMPLOYEE, NOT_PERFORMER_OR_APPROVED } from '../../src/commands/shared/employment.js';
import { createBody, EMPLOYMENT_TAX_IDS, ids, referenceData, TAX_ID } from '../support/fixtures.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import {
  basedOn,
  completePayload,
  deviceRequestPool,
  dispenseApi,
  dispensesPath,
  expectJobConflict,
  expectJobForbidden,
  expectJobNotFound,
  markInErrorPayload,
  type Res,
} from './helpers.js';

/** Who is refused, and the tax id their signatures carry (null: an unknown user has no party). */
const NOT_EMPLOYED: Array<[label: string, sub: string, taxId: string | null]> = [
  ['an unknown user', ids.userWithoutParty, null],
  ['a user whose party has no employee', ids.userWithoutEmployee, EMPLOYMENT_TAX_IDS.withoutEmployee],
  ['an employee of another legal entity only', ids.otherLegalEntityUser, EMPLOYMENT_TAX_IDS.otherLegalEntity],
  ['a dismissed (inactive) employee', ids.dismissedUser, EMPLOYMENT_TAX_IDS.dismissed],
];

function expectForbidden(res: Res): void {
  expect(res.body.error).toEqual({ type: 'forbidden', message: NOT_AN_ACTIVE_EMPLOYEE });
  expect(res.body).not.toHaveProperty('data');
  expect(res.status).toBe(403);
}

describe.each(testBackends())('employment on %s', (backend) => {
  const data = referenceData();
  const fresh = deviceRequestPool(data, 10);
  let t: TestServer;
  let api: ReturnType<typeof dispenseApi>;
  /** An in_progress dispense of the fixture legal entity that every refused call leaves alone. */
  let dispense: Record<string, unknown> & { id: string };
  beforeAll(async () => {
    t = await startTestServer({ data, backend });
    api = dispenseApi(t);
    dispense = await api.createInProgress(fresh());
  }, 120_000);
  afterAll(async () => t.close());

  const expectUnchanged = async () => {
    const shown = await api.get(dispense.id);
    expect(shown.status).toBe(200);
    expect(shown.body.data).toEqual(dispense);
  };
  const signedBy = async (payload: object, taxId: string | null) => ({ signed_data: await t.sign(payload, await t.signer(taxId ?? TAX_ID)) });

  describe.each(NOT_EMPLOYED)('%s', (_label, sub, taxId) => {
    let token: string;
    beforeAll(async () => {
      token = await t.token({ sub });
    });
    const get = (path: string) => request(t.app).get(path).set('authorization', `Bearer ${token}`);

    it('403 on get details, search by patient and search by legal entity', async () => {
      expectForbidden(await get(`${dispensesPath()}/${dispense.id}`));
      expectForbidden(await get(dispensesPath()));
      expectForbidden(await get('/api/device_dispenses'));
      expectForbidden(await get(`/api/device_dispenses?performer_legal_entity=${ids.legalEntity}`));
    });

    it('create: the job fails with 403 and nothing is created', async () => {
      const id = newId();
      expectJobForbidden(await api.create(createBody(id, basedOn(fresh())), { token }), NOT_AN_ACTIVE_EMPLOYEE);
      expect((await api.get(id)).status).toBe(404);
    });

    it('stop: the job fails with 403 and the dispense stays in progress', async () => {
      expectJobForbidden(await api.action(dispense.id, 'stop', undefined, { token }), NOT_AN_ACTIVE_EMPLOYEE);
      await expectUnchanged();
    });

    it(`mark in error: the job fails with 409 "${NOT_PERFORMER_OR_APPROVED}" (before the signature is looked at)`, async () => {
      expectJobConflict(
        await api.action(dispense.id, 'mark_in_error', await signedBy(markInErrorPayload(dispense), taxId), { token }),
        NOT_PERFORMER_OR_APPROVED,
      );
      await expectUnchanged();
    });

    it('complete: the job fails with 403 (after the signature and legal-entity checks of the page)', async () => {
      const res = await api.action(dispense.id, 'complete', await signedBy(completePayload(dispense), taxId), { token });
      // The page checks the signature first: a user without a party fails there, with its own 403.
      expectJobForbidden(res, taxId === null ? 'User is not allowed to this action by client_id' : NOT_AN_ACTIVE_EMPLOYEE);
      await expectUnchanged();
    });
  });

  describe("the seed's legal-entity checks come first, with their codes and messages", () => {
    const as = (sub: string, client_id: string) => t.token({ sub, client_id });

    it('create: an inactive legal entity is 409 even for an unknown user', async () => {
      const token = await as(ids.userWithoutParty, ids.inactiveLegalEntity);
      expectJobConflict(await api.create(createBody(newId(), basedOn(fresh())), { token }), 'client_id refers to legal entity that is not active');
    });

    it('stop: a wrong-type legal entity, and another legal entity’s dispense, are 409 for a dismissed employee', async () => {
      expectJobConflict(
        await api.action(dispense.id, 'stop', undefined, { token: await as(ids.dismissedUser, ids.wrongTypeLegalEntity) }),
        'Invalid LegalEntity type',
      );
      const otherLegalEntity = await as(ids.dismissedUser, ids.otherLegalEntity);
      expectJobConflict(await api.action(dispense.id, 'stop', undefined, { token: otherLegalEntity }), 'Device dispense belongs to another legal entity');
      await expectUnchanged();
    });

    it('stop: a dispense that does not exist is 404 only for an employee; a non-employee is refused first', async () => {
      expectJobForbidden(await api.action(newId(), 'stop', undefined, { token: await as(ids.dismissedUser, ids.legalEntity) }), NOT_AN_ACTIVE_EMPLOYEE);
      expectJobNotFound(await api.action(newId(), 'stop', undefined, { token: await as(ids.user, ids.legalEntity) }));
    });

    it('mark in error: an inactive legal entity and another legal entity’s dispense are 409 with their own messages', async () => {
      const body = await signedBy(markInErrorPayload(dispense), EMPLOYMENT_TAX_IDS.dismissed);
      expectJobConflict(
        await api.action(dispense.id, 'mark_in_error', body, { token: await as(ids.dismissedUser, ids.inactiveLegalEntity) }),
        'client_id refers to legal entity that is not active',
      );
      expectJobConflict(
        await api.action(dispense.id, 'mark_in_error', body, { token: await as(ids.dismissedUser, ids.otherLegalEntity) }),
        'Device dispense belongs to another legal entity',
      );
      await expectUnchanged();
    });

    it('complete: an inactive legal entity is 409 for a dismissed employee', async () => {
      const body = await signedBy(completePayload(dispense), EMPLOYMENT_TAX_IDS.dismissed);
      expectJobConflict(
        await api.action(dispense.id, 'complete', body, { token: await as(ids.dismissedUser, ids.inactiveLegalEntity) }),
        'client_id refers to legal entity that is not active',
      );
      await expectUnchanged();
    });
  });

  it('an active employee of the legal entity passes: another pharmacist of it reads and stops the dispense', async () => {
    const token = await t.token({ sub: ids.otherUser });
    expect((await api.get(dispense.id, { token })).status).toBe(200);
    const stopped = await api.action(dispense.id, 'stop', undefined, { token });
    expect(stopped.body.data).toMatchObject({ status: 'processed' });
    expect((await api.get(dispense.id)).body.data.status).toBe('stopped');
  });
});
