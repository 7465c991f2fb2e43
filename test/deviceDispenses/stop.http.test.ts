/**
 * Stop Device dispense (seed 000, RС_[UPD] Stop Device dispense), through HTTP only: every branch of
 * its Authorization and Validations sections with the seed's code and message, in the seed's order.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { ALL_SCOPES } from '../../src/auth/scopes.js';
import { ids, referenceData } from '../support/fixtures.js';
import { eventually } from '../support/events.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import {
  deviceRequestPool,
  dispenseApi,
  expectInvalidAccessToken,
  expectJobConflict,
  expectJobNotFound,
  expectMissingScope,
  expectProcessed,
  expiredToken,
  scopesWithout,
} from './helpers.js';

describe.each(testBackends())('Stop device dispense on %s', (backend) => {
  const data = referenceData();
  const fresh = deviceRequestPool(data, 40);
  let t: TestServer;
  let api: ReturnType<typeof dispenseApi>;
  beforeAll(async () => {
    t = await startTestServer({ data, backend });
    api = dispenseApi(t);
  });
  afterAll(async () => t.close());

  const stopAs = async (id: string, claims: Parameters<TestServer['token']>[0] = {}, patientId?: string) => {
    const token = await t.token(claims);
    return api.action(id, 'stop', undefined, { token, ...(patientId ? { patientId } : {}) });
  };

  describe('Authorization (synchronous)', () => {
    it('401 "Invalid access token" without a token', async () => {
      const dispense = await api.createInProgress(fresh());
      expectInvalidAccessToken(await request(t.app).patch(`/api/patients/${ids.patient}/device_dispenses/${dispense.id}/actions/stop`));
      expect((await api.get(dispense.id)).body.data.status).toBe('in_progress');
    });

    it('401 "Invalid access token" for a malformed and for an expired token', async () => {
      const dispense = await api.createInProgress(fresh());
      expectInvalidAccessToken(await api.patchAction(dispense.id, 'stop', undefined, { token: 'not-a-jwt' }));
      expectInvalidAccessToken(await api.patchAction(dispense.id, 'stop', undefined, { token: await expiredToken(t) }));
      expect((await api.get(dispense.id)).body.data.status).toBe('in_progress');
    });

    it('403 "…Missing allowances: device_dispense:stop" without the scope', async () => {
      const dispense = await api.createInProgress(fresh());
      const token = await t.token({ scope: scopesWithout(ALL_SCOPES, 'device_dispense:stop') });
      expectMissingScope(await api.patchAction(dispense.id, 'stop', undefined, { token }), 'device_dispense:stop');
      expect((await api.get(dispense.id)).body.data.status).toBe('in_progress');
    });
  });

  describe('Validate Legal entity', () => {
    it('409 "Invalid LegalEntity type" when the token\'s legal entity type is not in me_allowed_transactions_le_types', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobConflict(await stopAs(dispense.id, { client_id: ids.wrongTypeLegalEntity }), 'Invalid LegalEntity type');
      expect((await api.get(dispense.id)).body.data.status).toBe('in_progress');
    });

    it('409 "client_id refers to legal entity that is not active" for an inactive legal entity', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobConflict(await stopAs(dispense.id, { client_id: ids.inactiveLegalEntity }), 'client_id refers to legal entity that is not active');
    });

    it('409 "client_id refers to legal entity that is not active" for a legal entity that does not exist', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobConflict(await stopAs(dispense.id, { client_id: ids.unknownLegalEntity }), 'client_id refers to legal entity that is not active');
    });

    it('409 "Device dispense belongs to another legal entity" for another active pharmacy', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobConflict(await stopAs(dispense.id, { client_id: ids.otherLegalEntity }), 'Device dispense belongs to another legal entity');
      expect((await api.get(dispense.id)).body.data.status).toBe('in_progress');
    });
  });

  describe('Validate Device dispense', () => {
    it('404 not_found for an id that is not in device_dispenses', async () => {
      expectJobNotFound(await stopAs(newId()));
    });

    it('404 not_found for a dispense of another patient than the one in the URL', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobNotFound(await stopAs(dispense.id, {}, ids.otherPatient));
      expect((await api.get(dispense.id)).body.data.status).toBe('in_progress');
    });
  });

  describe('Validate transition', () => {
    it("409 'Device dispense in status stopped cannot be stopped'", async () => {
      const dispense = await api.createInProgress(fresh());
      await api.stop(dispense.id);
      expectJobConflict(await stopAs(dispense.id), 'Device dispense in status stopped cannot be stopped');
    });

    it("409 'Device dispense in status completed cannot be stopped'", async () => {
      const dispense = await api.createInProgress(fresh());
      await api.complete(dispense);
      expectJobConflict(await stopAs(dispense.id), 'Device dispense in status completed cannot be stopped');
    });

    it("409 'Device dispense in status entered_in_error cannot be stopped'", async () => {
      const dispense = await api.createInProgress(fresh());
      await api.markInError(dispense);
      expectJobConflict(await stopAs(dispense.id), 'Device dispense in status entered_in_error cannot be stopped');
    });
  });

  describe('Service logic', () => {
    it('stops an in_progress dispense: GET shows stopped, updated_by = the user, updated_at = now', async () => {
      const dispense = await api.createInProgress(fresh());
      const before = Date.now();
      // Any user of the legal entity that created it may stop it: here not the one who created it.
      const res = await stopAs(dispense.id, { sub: ids.otherUser });
      expectProcessed(res, dispense.id);
      const shown = (await api.get(dispense.id)).body.data;
      expect(shown).toMatchObject({ id: dispense.id, status: 'stopped', inserted_by: ids.user, inserted_at: dispense.inserted_at, updated_by: ids.otherUser });
      expect(Date.parse(shown.updated_at)).toBeGreaterThanOrEqual(before - 1000);
      expect(Date.parse(shown.updated_at)).toBeLessThanOrEqual(Date.now() + 1000);
      expect(shown.updated_at).not.toBe(dispense.updated_at);
      const { inserted_at: _i, updated_at: _u, updated_by: _b, status: _s, ...unchanged } = dispense;
      expect(shown).toMatchObject(unchanged);
    });
  });

  describe("the seed's order: the first broken rule answers", () => {
    it('wrong-type legal entity on a completed dispense → "Invalid LegalEntity type"', async () => {
      const dispense = await api.createInProgress(fresh());
      await api.complete(dispense);
      expectJobConflict(await stopAs(dispense.id, { client_id: ids.wrongTypeLegalEntity }), 'Invalid LegalEntity type');
    });

    it('a legal entity of a wrong type that is also closed → "Invalid LegalEntity type" (type before status)', async () => {
      const dispense = await api.createInProgress(fresh());
      expectJobConflict(await stopAs(dispense.id, { client_id: ids.closedWrongTypeLegalEntity }), 'Invalid LegalEntity type');
    });

    it('wrong-type legal entity on an unknown dispense → "Invalid LegalEntity type" (before 404)', async () => {
      expectJobConflict(await stopAs(newId(), { client_id: ids.wrongTypeLegalEntity }), 'Invalid LegalEntity type');
    });

    it('inactive legal entity on a stopped dispense → "client_id refers to legal entity that is not active"', async () => {
      const dispense = await api.createInProgress(fresh());
      await api.stop(dispense.id);
      expectJobConflict(await stopAs(dispense.id, { client_id: ids.inactiveLegalEntity }), 'client_id refers to legal entity that is not active');
    });

    it('another legal entity on a stopped dispense → "Device dispense belongs to another legal entity"', async () => {
      const dispense = await api.createInProgress(fresh());
      await api.stop(dispense.id);
      expectJobConflict(await stopAs(dispense.id, { client_id: ids.otherLegalEntity }), 'Device dispense belongs to another legal entity');
    });

    it('a stopped dispense under another patient in the URL → 404 (before the transition check)', async () => {
      const dispense = await api.createInProgress(fresh());
      await api.stop(dispense.id);
      expectJobNotFound(await stopAs(dispense.id, {}, ids.otherPatient));
    });
  });

  describe('auto-expired dispense (moves the clock: keep it last)', () => {
    // Moves this server's clock past device_dispense_ttl_days, so it runs last in this describe.
    it("409 'Device dispense in status unknown cannot be stopped' once auto-expiration set it to unknown", async () => {
      const dispense = await api.createInProgress(fresh());
      t.advanceClock((data.config.device_dispense_ttl_days + 1) * 24 * 3600 * 1000);
      // The sweep takes a cluster-wide lock; another suite's server may hold it for a moment.
      await eventually(async () => (await t.server.runExpirationSweep(), (await api.get(dispense.id)).body.data.status === 'unknown'), 10_000, 'expiration');
      expectJobConflict(await stopAs(dispense.id), 'Device dispense in status unknown cannot be stopped');
    });
  });
});
