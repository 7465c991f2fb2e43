/**
 * Search (GET /api/patients/{patient_id}/device_dispenses and GET /api/device_dispenses) and Get
 * details, spec §1.3 and §1.3.5: every filter, paging, newest first, only the token's legal entity's
 * dispenses (another's are 404 or simply absent), the patient from the URL, and the read scope.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import type { ReferenceDataFile } from '../../src/referenceData/referenceData.js';
import { createBody, ids, ref, referenceData } from '../support/fixtures.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';

/** Starting a server (and this file's fixtures) can take a while on a loaded machine. */
const SETUP_TIMEOUT_MS = 120_000;

const MINUTE = 60_000;
const FORBIDDEN_READ = 'Your scope does not allow to access this resource. Missing allowances: device_dispense:read';

/** Device requests and a second division for the dispenses below. */
const requests = {
  first: newId(),
  second: newId(),
  noProgram: newId(),
  packs: newId(),
  otherPatient: newId(),
  otherLegalEntity: newId(),
};
const secondDivision = newId();

function searchData(): ReferenceDataFile {
  const data = referenceData();
  const like = (id: string) => data.device_requests.find((r) => r.id === id)!;
  data.device_requests.push(
    { ...like(ids.deviceRequest), id: requests.first },
    { ...like(ids.deviceRequest), id: requests.second },
    { ...like(ids.noProgramRequest), id: requests.noProgram },
    { ...like(ids.classificationRequest), id: requests.packs },
    { ...like(ids.otherPatientRequest), id: requests.otherPatient },
    { ...like(ids.deviceRequest), id: requests.otherLegalEntity },
  );
  data.divisions.push({ id: secondDivision, legal_entity_id: ids.legalEntity, status: 'ACTIVE', name: 'Другий пункт', dls_verified: true });
  return data;
}

type Dispense = { id: string; status: string; inserted_at: string };

describe.each(testBackends())('device dispense search and details on %s', (backend) => {
  let t: TestServer;
  let auth: string;
  let otherUserAuth: string;
  let otherLegalEntityAuth: string;
  /** The dispenses, in the order they were created (a minute apart on the server clock). */
  const d = { first: '', second: '', noProgram: '', packs: '', otherPatient: '' };
  let otherLegalEntityDispense = '';
  const inserted: Record<string, string> = {};

  const base = (patientId: string = ids.patient) => `/api/patients/${patientId}/device_dispenses`;
  const get = (path: string, bearer = auth) => request(t.app).get(path).set('authorization', bearer);
  const idsOf = (res: request.Response): string[] => (res.body.data as Dispense[]).map((x) => x.id);
  const byPatient = async (query: string, bearer = auth) => {
    const res = await get(`${base()}?${query}`, bearer);
    expect(res.status).toBe(200);
    return idsOf(res);
  };
  const byLegalEntity = async (query: string, bearer = auth) => {
    const res = await get(`/api/device_dispenses?${query}`, bearer);
    expect(res.status).toBe(200);
    return idsOf(res);
  };

  async function create(body: Record<string, unknown>, { patientId = ids.patient, bearer = auth } = {}): Promise<string> {
    t.advanceClock(MINUTE);
    const accepted = await request(t.app).post(base(patientId)).set('authorization', bearer).send(body);
    expect(accepted.status).toBe(202);
    const job = await t.waitForJob(accepted.body.data.links[0].href, bearer.slice('Bearer '.length));
    expect(job.body.data).toMatchObject({ status: 'processed' });
    return body.id as string;
  }
  async function act(id: string, action: string, body?: object) {
    const req = request(t.app).patch(`${base()}/${id}/actions/${action}`).set('authorization', auth);
    const accepted = await (body ? req.send(body) : req);
    expect((await t.waitForJob(accepted.body.data.links[0].href)).status).toBe(303);
  }

  beforeAll(async () => {
    t = await startTestServer({ backend, data: searchData() });
    auth = `Bearer ${await t.token()}`;
    otherUserAuth = `Bearer ${await t.token({ sub: ids.otherUser })}`;
    otherLegalEntityAuth = `Bearer ${await t.token({ client_id: ids.otherLegalEntity })}`;

    // A hand-over given at creation is the creation's moment (within the clock-skew allowance): the
    // server's clock is set so that each of these is created when it was handed over (create adds a minute).
    const handedOverAt = (iso: string) => t.setClock(new Date(Date.parse(iso) - MINUTE + 30_000));
    handedOverAt('2024-03-01T10:00:00Z');
    d.first = await create(createBody(newId(), { based_on: ref('device_request', requests.first), when_handed_over: '2024-03-01T10:00:00Z' }));
    d.second = await create(createBody(newId(), { based_on: ref('device_request', requests.second), location: ref('division', secondDivision) }));
    handedOverAt('2024-03-15T10:00:00Z');
    d.noProgram = await create(
      createBody(newId(), {
        based_on: ref('device_request', requests.noProgram),
        program: undefined,
        verification_code: undefined,
        performer: ref('employee', ids.otherUsersEmployee),
        when_handed_over: '2024-03-15T10:00:00Z',
      }),
      { bearer: otherUserAuth },
    );
    t.setClock(new Date());
    d.packs = await create(
      createBody(newId(), {
        based_on: ref('device_request', requests.packs),
        verification_code: '5678',
        details: [{ device: ref('device_definition', ids.packDefinition), quantity: { value: 20, system: 'device_unit', code: 'pack' } }],
      }),
    );
    d.otherPatient = await create(createBody(newId(), { based_on: ref('device_request', requests.otherPatient) }), { patientId: ids.otherPatient });

    await act(d.second, 'stop');
    const packs = (await get(`${base()}/${d.packs}`)).body.data;
    await act(d.packs, 'complete', {
      signed_data: await t.sign({
        ...packs,
        status: 'completed',
        when_handed_over: new Date(Date.parse(packs.inserted_at) + 1000).toISOString(),
        payment_amount: 10,
        payment_id: 'P-1',
      }),
    });

    for (const [name, id] of Object.entries(d)) {
      const patientId = name === 'otherPatient' ? ids.otherPatient : ids.patient;
      inserted[name] = (await get(`${base(patientId)}/${id}`)).body.data.inserted_at;
    }
  }, SETUP_TIMEOUT_MS);
  afterAll(async () => t?.close());

  // Newest first: the order of creation, reversed.
  const ofPatient = () => [d.packs, d.noProgram, d.second, d.first];
  const ofLegalEntity = () => [d.otherPatient, d.packs, d.noProgram, d.second, d.first];

  describe('without filters', () => {
    it('the patient’s dispenses of the legal entity, newest first', async () => {
      expect(await byPatient('')).toEqual(ofPatient());
    });

    it('every dispense of the legal entity, newest first', async () => {
      expect(await byLegalEntity('')).toEqual(ofLegalEntity());
    });

    it('the documents are the ones GET details returns, as a list with default paging', async () => {
      const res = await get(base());
      expect(res.body.meta).toMatchObject({ code: 200, type: 'list' });
      expect(res.body.paging).toEqual({ page: 1, page_size: 50, total_entries: 4, total_pages: 1 });
      for (const document of res.body.data as Dispense[]) expect(document).toEqual((await get(`${base()}/${document.id}`)).body.data);
    });
  });

  describe('filters (each alone, then combined)', () => {
    it('status', async () => {
      expect(await byPatient('status=stopped')).toEqual([d.second]);
      expect(await byPatient('status=completed')).toEqual([d.packs]);
      expect(await byPatient('status=in_progress')).toEqual([d.noProgram, d.first]);
      expect(await byLegalEntity('status=in_progress')).toEqual([d.otherPatient, d.noProgram, d.first]);
      expect(await byPatient('status=entered_in_error')).toEqual([]);
    });

    it('based_on (the device request)', async () => {
      expect(await byPatient(`based_on=${requests.first}`)).toEqual([d.first]);
      expect(await byLegalEntity(`based_on=${requests.otherPatient}`)).toEqual([d.otherPatient]);
      expect(await byPatient(`based_on=${requests.otherPatient}`)).toEqual([]);
    });

    it('location (the division)', async () => {
      expect(await byPatient(`location=${secondDivision}`)).toEqual([d.second]);
      expect(await byPatient(`location=${ids.division}`)).toEqual([d.packs, d.noProgram, d.first]);
    });

    it('performer (the employee)', async () => {
      expect(await byPatient(`performer=${ids.otherUsersEmployee}`)).toEqual([d.noProgram]);
      expect(await byLegalEntity(`performer=${ids.employee}`)).toEqual([d.otherPatient, d.packs, d.second, d.first]);
    });

    it('program', async () => {
      expect(await byPatient(`program=${ids.program}`)).toEqual([d.packs, d.second, d.first]);
      expect(await byPatient(`program=${ids.otherProgram}`)).toEqual([]);
    });

    it('device (the device definition)', async () => {
      expect(await byPatient(`device=${ids.packDefinition}`)).toEqual([d.packs]);
      expect(await byPatient(`device=${ids.definition}`)).toEqual([d.noProgram, d.second, d.first]);
    });

    it('device_code (the classification type of the dispensed device)', async () => {
      expect(await byPatient('device_code=30222')).toEqual([d.packs]);
      expect(await byLegalEntity('device_code=30221')).toEqual([d.otherPatient, d.noProgram, d.second, d.first]);
      expect(await byPatient('device_code=99999')).toEqual([]);
    });

    it('inserted_at_from / inserted_at_to (inclusive; a bare date is the whole day)', async () => {
      expect(await byPatient(`inserted_at_from=${inserted.second}&inserted_at_to=${inserted.noProgram}`)).toEqual([d.noProgram, d.second]);
      expect(await byPatient(`inserted_at_from=${inserted.noProgram}`)).toEqual([d.packs, d.noProgram]);
      expect(await byPatient(`inserted_at_to=${inserted.first}`)).toEqual([d.first]);
      expect(await byPatient('inserted_at_to=2000-01-01')).toEqual([]);
      expect(await byPatient('inserted_at_from=2000-01-01')).toEqual(ofPatient());
    });

    it('when_handed_over_from / when_handed_over_to', async () => {
      expect(await byPatient('when_handed_over_from=2024-03-01&when_handed_over_to=2024-03-10')).toEqual([d.first]);
      expect(await byPatient('when_handed_over_to=2024-03-15')).toEqual([d.noProgram, d.first]);
      expect(await byPatient('when_handed_over_from=2024-03-01T10:00:01Z&when_handed_over_to=2024-12-31')).toEqual([d.noProgram]);
      // The completed dispense was handed over a second after it was inserted.
      expect(await byPatient(`when_handed_over_from=${inserted.packs}`)).toEqual([d.packs]);
    });

    it('a date-time bound is an instant, whatever its form (no milliseconds, an offset): bounds are inclusive', async () => {
      // d.noProgram was handed over at 2024-03-15T10:00:00Z exactly.
      for (const instant of [
        '2024-03-15T10:00:00Z',
        '2024-03-15T10:00:00.000Z',
        '2024-03-15T12:00:00+02:00',
        '2024-03-15T10:00Z',
        '2024-03-15T10:00:00.000000Z',
      ]) {
        const bound = encodeURIComponent(instant);
        expect(await byPatient(`when_handed_over_from=${bound}&when_handed_over_to=${bound}`)).toEqual([d.noProgram]);
      }
      expect(await byPatient(`when_handed_over_from=${encodeURIComponent('2024-03-15T12:00:01+02:00')}&when_handed_over_to=2024-03-31`)).toEqual([]);
      expect(await byPatient(`when_handed_over_to=${encodeURIComponent('2024-03-15T09:59:59.999Z')}`)).toEqual([d.first]);
      // The same for inserted_at, given in another offset.
      const firstInKyiv = new Date(Date.parse(inserted.first!) + 2 * 3600_000).toISOString().replace('Z', '+02:00');
      expect(await byPatient(`inserted_at_from=${encodeURIComponent(firstInKyiv)}&inserted_at_to=${encodeURIComponent(firstInKyiv)}`)).toEqual([d.first]);
    });

    it('a date bound that is not a date is a 422 on the query parameter', async () => {
      for (const query of ['when_handed_over_from=2024-13-45', 'inserted_at_to=yesterday', 'inserted_at_from=2024-03-15T25:00:00Z']) {
        const res = await get(`${base()}?${query}`);
        expect(res.status).toBe(422);
        expect(res.body.error.invalid).toEqual([expect.objectContaining({ entry: `$.${query.split('=')[0]}`, entry_type: 'query_parameter' })]);
      }
    });

    it('filters combine with AND', async () => {
      expect(await byPatient(`status=in_progress&program=${ids.program}`)).toEqual([d.first]);
      expect(await byPatient(`status=in_progress&device_code=30221&performer=${ids.otherUsersEmployee}`)).toEqual([d.noProgram]);
      expect(await byPatient(`status=stopped&location=${ids.division}`)).toEqual([]);
    });

    it('performer_legal_entity: the token’s own legal entity is a filter like the others', async () => {
      expect(await byLegalEntity(`performer_legal_entity=${ids.legalEntity}`)).toEqual(ofLegalEntity());
      expect(await byPatient(`performer_legal_entity=${ids.legalEntity}&status=stopped`)).toEqual([d.second]);
    });
  });

  describe('paging', () => {
    it('pages through newest first with page, page_size, total_entries and total_pages', async () => {
      const pages = [];
      for (let page = 1; page <= 3; page++) {
        const res = await get(`/api/device_dispenses?page=${page}&page_size=2`);
        expect(res.status).toBe(200);
        expect(res.body.paging).toEqual({ page, page_size: 2, total_entries: 5, total_pages: 3 });
        pages.push(...idsOf(res));
      }
      expect(pages).toEqual(ofLegalEntity());

      const beyond = await get(`${base()}?page=5&page_size=2`);
      expect(beyond.body.data).toEqual([]);
      expect(beyond.body.paging).toEqual({ page: 5, page_size: 2, total_entries: 4, total_pages: 2 });
    });

    it('paging counts what the filters find', async () => {
      const res = await get(`${base()}?status=in_progress&page_size=1`);
      expect(idsOf(res)).toEqual([d.noProgram]);
      expect(res.body.paging).toEqual({ page: 1, page_size: 1, total_entries: 2, total_pages: 2 });
    });

    it('page_size between 1 and 300', async () => {
      expect((await get(`/api/device_dispenses?page_size=300`)).status).toBe(200);
      expect((await get(`/api/device_dispenses?page_size=1`)).status).toBe(200);
      for (const [path, query] of [
        ['/api/device_dispenses', 'page_size=0'],
        ['/api/device_dispenses', 'page_size=301'],
        [base(), 'page_size=0'],
        [base(), 'page_size=301'],
      ] as const) {
        const res = await get(`${path}?${query}`);
        expect(res.status).toBe(422);
        expect(res.body.error.type).toBe('validation_failed');
        expect(res.body.error.invalid).toEqual([expect.objectContaining({ entry: '$.page_size', entry_type: 'query_parameter' })]);
      }
    });

    it('page must be a positive number', async () => {
      for (const query of ['page=0', 'page=abc']) {
        const res = await get(`/api/device_dispenses?${query}`);
        expect(res.status).toBe(422);
        expect(res.body.error.invalid).toEqual([expect.objectContaining({ entry: '$.page', entry_type: 'query_parameter' })]);
      }
    });
  });

  describe('only the token’s legal entity', () => {
    it('another legal entity sees none of these dispenses', async () => {
      const empty = { page: 1, page_size: 50, total_entries: 0, total_pages: 0 };
      for (const path of [base(), base(ids.otherPatient), '/api/device_dispenses']) {
        const res = await get(path, otherLegalEntityAuth);
        expect(res.status).toBe(200);
        expect(res.body.data).toEqual([]);
        expect(res.body.paging).toEqual(empty);
      }
      for (const [name, id] of Object.entries(d)) {
        const res = await get(`${base(name === 'otherPatient' ? ids.otherPatient : ids.patient)}/${id}`, otherLegalEntityAuth);
        expect(res.status).toBe(404);
        expect(res.body.error.type).toBe('not_found');
      }
    });

    it('a dispense of another legal entity is never in our searches, and its details are 404', async () => {
      otherLegalEntityDispense = await create(
        createBody(newId(), {
          based_on: ref('device_request', requests.otherLegalEntity),
          performer: ref('employee', ids.employeeOfOtherLegalEntity),
          location: ref('division', ids.otherLegalEntityDivision),
        }),
        { bearer: otherLegalEntityAuth },
      );
      expect(await byLegalEntity('', otherLegalEntityAuth)).toEqual([otherLegalEntityDispense]);
      expect(await byPatient('', otherLegalEntityAuth)).toEqual([otherLegalEntityDispense]);

      expect(await byLegalEntity('')).toEqual(ofLegalEntity());
      expect(await byPatient('')).toEqual(ofPatient());
      expect(await byLegalEntity(`based_on=${requests.otherLegalEntity}`)).toEqual([]);
      expect(await byLegalEntity(`location=${ids.otherLegalEntityDivision}`)).toEqual([]);
      expect(await byLegalEntity(`performer=${ids.employeeOfOtherLegalEntity}`)).toEqual([]);

      const details = await get(`${base()}/${otherLegalEntityDispense}`);
      expect(details.status).toBe(404);
      expect(details.body.error.type).toBe('not_found');
    });

    it('performer_legal_entity naming another legal entity is 404 not_found', async () => {
      for (const path of ['/api/device_dispenses', base()]) {
        const res = await get(`${path}?performer_legal_entity=${ids.otherLegalEntity}`);
        expect(res.status).toBe(404);
        expect(res.body.error.type).toBe('not_found');
      }
    });
  });

  describe('the patient from the URL', () => {
    it('another patient’s dispense is 404 under this patient, and this patient’s under another', async () => {
      const wrongPatient = await get(`${base()}/${d.otherPatient}`);
      expect(wrongPatient.status).toBe(404);
      expect(wrongPatient.body.error.type).toBe('not_found');
      const underOther = await get(`${base(ids.otherPatient)}/${d.first}`);
      expect(underOther.status).toBe(404);
      expect(underOther.body.error.type).toBe('not_found');
      expect((await get(`${base(ids.otherPatient)}/${d.otherPatient}`)).status).toBe(200);
    });

    it('the patient search lists only that patient’s dispenses', async () => {
      const res = await get(base(ids.otherPatient));
      expect(idsOf(res)).toEqual([d.otherPatient]);
      expect(await byPatient('', auth)).not.toContain(d.otherPatient);
    });

    it('an unknown dispense is 404 not_found', async () => {
      const res = await get(`${base()}/${newId()}`);
      expect(res.status).toBe(404);
      expect(res.body.error.type).toBe('not_found');
    });
  });

  describe('scope device_dispense:read', () => {
    it('403 with the exact message for a token without it', async () => {
      const withoutRead = `Bearer ${await t.token({ scope: 'device_dispense:write device_dispense:stop' })}`;
      for (const path of [base(), '/api/device_dispenses', `${base()}/${d.first}`]) {
        const res = await get(path, withoutRead);
        expect(res.status).toBe(403);
        expect(res.body.error).toMatchObject({ type: 'forbidden', message: FORBIDDEN_READ });
      }
    });

    it('a token with only device_dispense:read reads', async () => {
      const readOnly = `Bearer ${await t.token({ scope: 'device_dispense:read' })}`;
      expect((await get(`${base()}/${d.first}`, readOnly)).status).toBe(200);
      expect(await byLegalEntity('', readOnly)).toEqual(ofLegalEntity());
    });
  });
});
