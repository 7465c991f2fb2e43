/**
 * Audit scopes: audit:read reads only the token's legal entity's streams (its dispenses, its licences),
 * in the stream, global-list and as-of endpoints, and another's answers exactly like what does not
 * exist; audit:read_all (the national auditor) reads everything. The global list, filtered, never
 * skips an event however it is paged.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { AUDIT_READ_ALL } from '../../src/auth/scopes.js';
import { createBody, ids, ref } from '../support/fixtures.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';

type AuditEvent = { stream_name: string; event_type: string; position: string; metadata: { event_id: string } };
type Res = request.Response;

describe.each(testBackends())('audit scopes on %s', (backend) => {
  let t: TestServer;
  /** audit:read of the fixture legal entity, audit:read of the other one, audit:read_all only. */
  let own: string;
  let other: string;
  let national: string;
  const ownDispense = newId();
  const otherDispense = newId();
  const ownStream = `device_dispense-${ownDispense}`;
  const otherStream = `device_dispense-${otherDispense}`;
  const ownLicences = `legal_entity_licenses-${ids.legalEntity}`;
  const otherLicences = `legal_entity_licenses-${ids.otherLegalEntity}`;
  const dispensingStream = `device_request_dispensing-${ids.deviceRequest}`;

  beforeAll(async () => {
    t = await startTestServer({ backend });
    own = `Bearer ${await t.token({ scope: 'audit:read device_dispense:write' })}`;
    other = `Bearer ${await t.token({ client_id: ids.otherLegalEntity, scope: 'audit:read device_dispense:write' })}`;
    national = `Bearer ${await t.token({ scope: AUDIT_READ_ALL })}`;
    const base = `/api/patients/${ids.patient}/device_dispenses`;
    // One dispense of each legal entity (the fixture pharmacist is employed by both).
    const mine = await request(t.app).post(base).set('authorization', own).send(createBody(ownDispense));
    expect((await t.waitForJob(mine.body.data.links[0].href, own.slice(7))).status).toBe(303);
    const theirs = await request(t.app)
      .post(base)
      .set('authorization', other)
      .send(
        createBody(otherDispense, {
          performer: ref('employee', ids.employeeOfOtherLegalEntity),
          location: ref('division', ids.otherLegalEntityDivision),
          based_on: ref('device_request', ids.secondRequest),
        }),
      );
    expect((await t.waitForJob(theirs.body.data.links[0].href, other.slice(7))).status).toBe(303);
  }, 120_000);
  afterAll(async () => t.close());

  const get = (path: string, bearer: string) => request(t.app).get(path).set('authorization', bearer);
  const streamOf = (name: string, bearer: string) => get(`/api/audit/streams/${name}/events`, bearer);

  /** A hidden resource answers exactly as a missing one: same status, same error body. */
  async function expectSameAsMissing(hidden: Res, missing: Res, message: string): Promise<void> {
    expect(missing.body.error).toEqual({ type: 'not_found', message });
    expect(missing.status).toBe(404);
    expect(hidden.body.error).toEqual(missing.body.error);
    expect(hidden.body.meta.code).toBe(missing.body.meta.code);
    expect(Object.keys(hidden.body).sort()).toEqual(Object.keys(missing.body).sort());
    expect(hidden.status).toBe(missing.status);
  }

  /** Walks the whole global list `limit` events at a time, following the checkpoint. */
  async function walk(bearer: string, limit: number): Promise<AuditEvent[]> {
    const seen: AuditEvent[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 1000; pages += 1) {
      const res: Res = await get(`/api/audit/events?limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ''}`, bearer);
      expect(res.status).toBe(200);
      const events = res.body.data.events as AuditEvent[];
      expect(events.length).toBeLessThanOrEqual(limit);
      seen.push(...events);
      // A short page is the end of the log, also when filtered.
      if (events.length < limit) return seen;
      expect(res.body.data.checkpoint).toBe(events[events.length - 1]!.position);
      after = res.body.data.checkpoint;
    }
    throw new Error('the walk did not end');
  }

  describe('one stream', () => {
    it('audit:read reads its own dispense and licence streams', async () => {
      const dispense = await streamOf(ownStream, own);
      expect(dispense.status).toBe(200);
      expect(dispense.body.data.map((e: AuditEvent) => e.event_type)).toEqual(['DeviceDispenseCreated']);
      const licences = await streamOf(ownLicences, own);
      expect(licences.status).toBe(200);
      expect(licences.body.data.map((e: AuditEvent) => e.event_type)).toEqual(['LicenseImported']);
    });

    it("another legal entity's dispense and licence streams answer as a stream that does not exist", async () => {
      const missing = await streamOf(`device_dispense-${newId()}`, own);
      await expectSameAsMissing(await streamOf(otherStream, own), missing, 'Stream not found');
      await expectSameAsMissing(await streamOf(otherLicences, own), missing, 'Stream not found');
      await expectSameAsMissing(await get(`/api/audit/streams/${otherStream}/events?page=2`, own), missing, 'Stream not found');
      // And the other way round: the other legal entity cannot read ours.
      await expectSameAsMissing(await streamOf(ownStream, other), missing, 'Stream not found');
    });

    it('a stream of no single legal entity (a device request’s dispensing) is for audit:read_all only', async () => {
      await expectSameAsMissing(await streamOf(dispensingStream, own), await streamOf(`device_request_dispensing-${newId()}`, own), 'Stream not found');
      const all = await streamOf(dispensingStream, national);
      expect(all.status).toBe(200);
      expect(all.body.data[0]).toMatchObject({ stream_name: dispensingStream, revision: 0 });
    });

    it('audit:read_all reads every legal entity’s streams', async () => {
      for (const name of [ownStream, otherStream, ownLicences, otherLicences]) {
        const res = await streamOf(name, national);
        expect(res.status).toBe(200);
        expect(res.body.data[0]).toMatchObject({ stream_name: name, revision: 0 });
      }
    });
  });

  describe('the global list', () => {
    it('audit:read lists only its own streams’ events, and paging by 1, 2 or 1000 skips none of them', async () => {
      const everything = await walk(national, 1000);
      const streams = new Set(everything.map((e) => e.stream_name));
      expect(streams).toEqual(
        new Set([ownStream, otherStream, ownLicences, otherLicences, dispensingStream, `device_request_dispensing-${ids.secondRequest}`]),
      );
      const expected = everything.filter((e) => e.stream_name === ownStream || e.stream_name === ownLicences).map((e) => e.metadata.event_id);
      expect(expected).toHaveLength(2);
      for (const limit of [1, 2, 1000]) expect((await walk(own, limit)).map((e) => e.metadata.event_id)).toEqual(expected);
      const theirs = everything.filter((e) => e.stream_name === otherStream || e.stream_name === otherLicences).map((e) => e.metadata.event_id);
      for (const limit of [1, 1000]) expect((await walk(other, limit)).map((e) => e.metadata.event_id)).toEqual(theirs);
    });

    it('audit:read_all pages through everything without gaps', async () => {
      const everything = await walk(national, 1000);
      expect((await walk(national, 1)).map((e) => e.metadata.event_id)).toEqual(everything.map((e) => e.metadata.event_id));
    });

    it('the checkpoint after the last page stays put, and a bad checkpoint is 422', async () => {
      const all = await get('/api/audit/events?limit=1000', own);
      const last = all.body.data.checkpoint as string;
      const after = await get(`/api/audit/events?limit=5&after=${encodeURIComponent(last)}`, own);
      expect(after.status).toBe(200);
      expect(after.body.data).toEqual({ events: [], checkpoint: last });
      const bad = await get('/api/audit/events?after=not-a-checkpoint', own);
      expect(bad.body.error).toMatchObject({ type: 'validation_failed', message: 'Invalid checkpoint' });
      expect(bad.status).toBe(422);
    });
  });

  describe('as of a moment', () => {
    const now = () => encodeURIComponent(new Date().toISOString());

    it("another legal entity's dispense answers as one that does not exist; read_all sees it", async () => {
      const mine = await get(`/api/audit/device_dispenses/${ownDispense}?as_of=${now()}`, own);
      expect(mine.status).toBe(200);
      expect(mine.body.data.state).toMatchObject({ id: ownDispense, status: 'in_progress' });
      const missing = await get(`/api/audit/device_dispenses/${newId()}?as_of=${now()}`, own);
      await expectSameAsMissing(
        await get(`/api/audit/device_dispenses/${otherDispense}?as_of=${now()}`, own),
        missing,
        'Device dispense did not exist at that time',
      );
      await expectSameAsMissing(await get(`/api/audit/device_dispenses/${otherDispense}`, own), missing, 'Device dispense did not exist at that time');
      const all = await get(`/api/audit/device_dispenses/${otherDispense}?as_of=${now()}`, national);
      expect(all.status).toBe(200);
      expect(all.body.data.state).toMatchObject({ id: otherDispense, performer_legal_entity: { identifier: { value: ids.otherLegalEntity } } });
    });

    it("another legal entity's licence answers as one that does not exist; read_all sees it", async () => {
      expect((await get(`/api/audit/licenses/${ids.primaryLicense}?as_of=${now()}`, own)).status).toBe(200);
      const missing = await get(`/api/audit/licenses/${newId()}?as_of=${now()}`, own);
      await expectSameAsMissing(await get(`/api/audit/licenses/${ids.otherPrimaryLicense}?as_of=${now()}`, own), missing, 'License was not found');
      const all = await get(`/api/audit/licenses/${ids.otherPrimaryLicense}?as_of=${now()}`, national);
      expect(all.status).toBe(200);
      expect(all.body.data.state).toMatchObject({ id: ids.otherPrimaryLicense, legal_entity_id: ids.otherLegalEntity });
    });
  });

  it('needs audit:read or audit:read_all: without either, 403 naming audit:read on every audit endpoint', async () => {
    const none = `Bearer ${await t.token({ scope: 'device_dispense:read admin:read' })}`;
    for (const path of [
      `/api/audit/streams/${ownStream}/events`,
      '/api/audit/events',
      `/api/audit/device_dispenses/${ownDispense}`,
      `/api/audit/licenses/${ids.primaryLicense}`,
    ]) {
      const res = await get(path, none);
      expect(res.body.error).toEqual({ type: 'forbidden', message: 'Your scope does not allow to access this resource. Missing allowances: audit:read' });
      expect(res.status).toBe(403);
    }
  });
});
