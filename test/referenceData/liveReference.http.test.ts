/**
 * Reference data that stays current while serving (issue 27): records changed through the API are
 * used by the next command, on this instance and (PostgreSQL) another one on the same database; the
 * version rules, the all-or-nothing batch, the change log read as of a time, and the provenance a
 * creation event records.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { readWholeStream } from '../../src/eventStore/eventStore.js';
import { deviceRequestRecord, ids, referenceData } from '../support/fixtures.js';
import { eventually } from '../support/events.js';
import { newId, startTestServer, testBackends, type TestServer } from '../support/testServer.js';
import {
  basedOn,
  deviceRequestPool,
  dispenseApi,
  expectJobConflict,
  expectJobForbidden,
  expectJobUnprocessable,
  expectProcessed,
} from '../deviceDispenses/helpers.js';
import { createBody } from '../support/fixtures.js';

const REF = '/api/admin/reference';

const deviceRequest = (id: string, overrides: Parameters<typeof deviceRequestRecord>[1] = {}) => deviceRequestRecord(id, { version: 1, ...overrides });

describe.each(testBackends())('reference data while serving on %s', (backend) => {
  const data = referenceData();
  const fresh = deviceRequestPool(data, 10);
  let t: TestServer;
  let api: ReturnType<typeof dispenseApi>;
  let auth: string;
  beforeAll(async () => {
    t = await startTestServer({ data, backend });
    api = dispenseApi(t);
    auth = `Bearer ${await t.token()}`;
  });
  afterAll(async () => t?.close());

  const put = (kind: string, id: string, body: unknown) =>
    request(t.app)
      .put(`${REF}/${kind}/${id}`)
      .set('authorization', auth)
      .send(body as object);
  const batch = (path: string, lines: string) =>
    request(t.app).post(`${REF}${path}`).set('authorization', auth).set('content-type', 'application/x-ndjson').send(lines);

  it('a device request added while serving is dispensable at once, without a restart', async () => {
    const id = newId();
    const requestId = newId();
    // Not there yet: the creation is refused (and "not there" is not kept past the change).
    expectJobUnprocessable(await api.create(createBody(id, basedOn(requestId))), 'Device request not found', '$.based_on.identifier.value');
    const created = await put('device_requests', requestId, deviceRequest(requestId));
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe(`${REF}/device_requests/${requestId}`);
    expect(created.body.data).toMatchObject({ kind: 'device_requests', id: requestId, version: 1, changed: true });
    const second = newId();
    expectProcessed(await api.create(createBody(second, basedOn(requestId))), second);
  });

  it('an employee dismissed while serving is refused on the next command (403), and reinstated with a newer version', async () => {
    const dispense = await api.createInProgress(fresh());
    const employee = data.employees.find((e) => e.id === ids.employee)!;
    const dismissed = await put('employees', ids.employee, { ...employee, version: 2, status: 'DISMISSED', is_active: false });
    expect(dismissed.status).toBe(200);
    expectJobForbidden(await api.action(dispense.id, 'stop'), 'User is not an active employee of the legal entity');
    // Reads are refused too (the same rule, checked first).
    expect((await api.get(dispense.id)).status).toBe(403);
    expect((await put('employees', ids.employee, { ...employee, version: 3 })).status).toBe(200);
    expectProcessed(await api.action(dispense.id, 'stop'), dispense.id);
  });

  it("a legal entity closed while serving gets the seed's 409, and the older and conflicting versions are refused", async () => {
    const dispense = await api.createInProgress(fresh());
    const legalEntity = data.legal_entities.find((le) => le.id === ids.legalEntity)!;
    expect((await put('legal_entities', ids.legalEntity, { ...legalEntity, version: 5, status: 'CLOSED' })).status).toBe(200);
    expectJobConflict(await api.action(dispense.id, 'stop'), 'client_id refers to legal entity that is not active');

    const older = await put('legal_entities', ids.legalEntity, { ...legalEntity, version: 4 });
    expect(older.status).toBe(409);
    expect(older.body.error).toEqual({ type: 'request_conflict', message: 'Version 4 is older than the stored version 5' });
    const changed = await put('legal_entities', ids.legalEntity, { ...legalEntity, version: 5, status: 'ACTIVE' });
    expect(changed.status).toBe(409);
    expect(changed.body.error).toEqual({ type: 'request_conflict', message: 'Version 5 is stored with different content' });
    const same = await put('legal_entities', ids.legalEntity, { ...legalEntity, version: 5, status: 'CLOSED' });
    expect(same.status).toBe(200);
    expect(same.body.data).toMatchObject({ version: 5, changed: false });

    expect((await put('legal_entities', ids.legalEntity, { ...legalEntity, version: 6 })).status).toBe(200);
    expectProcessed(await api.action(dispense.id, 'stop'), dispense.id);
    const shown = await request(t.app).get(`${REF}/legal_entities/${ids.legalEntity}`).set('authorization', auth);
    expect(shown.status).toBe(200);
    expect(shown.body.data).toMatchObject({ kind: 'legal_entities', id: ids.legalEntity, version: 6, record: { ...legalEntity, version: 6 } });
  });

  it('X-Idempotency-Key: a PUT and a batch sent again are answered as the first time, without running again', async () => {
    const id = newId();
    const first = await put('device_requests', id, deviceRequest(id)).set('x-idempotency-key', `put-${id}`);
    const again = await put('device_requests', id, deviceRequest(id)).set('x-idempotency-key', `put-${id}`);
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers.location).toBe(`${REF}/device_requests/${id}`);
    expect(again.body.data).toEqual(first.body.data);
    const other = newId();
    const lines = JSON.stringify(deviceRequest(other));
    const batchOnce = await batch('/device_requests', lines).set('x-idempotency-key', `batch-${other}`);
    const batchTwice = await batch('/device_requests', lines).set('x-idempotency-key', `batch-${other}`);
    expect(batchOnce.body.data).toMatchObject({ written: 1 });
    expect(batchTwice.headers['idempotent-replayed']).toBe('true');
    expect(batchTwice.body.data).toEqual(batchOnce.body.data);
    // The same key with another body is refused.
    const reused = await batch('/device_requests', JSON.stringify(deviceRequest(newId()))).set('x-idempotency-key', `batch-${other}`);
    expect(reused.status).toBe(422);
  });

  it('a record of the wrong shape or id is 422, an unknown kind 404, and both scopes are required', async () => {
    const bad = await put('device_requests', 'x-1', { id: 'x-1', version: 1 });
    expect(bad.status).toBe(422);
    expect(bad.body.error.invalid[0]).toMatchObject({ entry: '$.code', entry_type: 'json_data_property' });
    const otherId = await put('device_requests', 'x-2', deviceRequest('x-3'));
    expect(otherId.status).toBe(422);
    expect(otherId.body.error.invalid[0]).toMatchObject({ entry: '$.id', rules: [expect.objectContaining({ description: 'must equal the id in the path' })] });
    expect((await put('nonsense', 'x', {})).body.error).toEqual({ type: 'not_found', message: 'Reference kind not found' });
    const noScope = await request(t.app)
      .put(`${REF}/device_requests/x-4`)
      .set('authorization', `Bearer ${await t.token({ scope: 'device_dispense:read reference:read' })}`)
      .send(deviceRequest('x-4'));
    expect(noScope.status).toBe(403);
    expect(noScope.body.error.message).toBe('Your scope does not allow to access this resource. Missing allowances: reference:write');
  });

  it('a batch is all or nothing: a bad line is refused with its number and field, nothing of it is written', async () => {
    const [a, b] = [newId(), newId()];
    const lines = [JSON.stringify(deviceRequest(a)), JSON.stringify({ ...deviceRequest(b), intent: 7 })].join('\n');
    const refused = await batch('/device_requests', lines);
    expect(refused.status).toBe(422);
    expect(refused.body.error).toMatchObject({ type: 'validation_failed', message: expect.stringMatching(/^line 2: record\.intent: /) });
    expect(refused.body.error.invalid[0]).toMatchObject({ entry: '$[1].record.intent' });
    expect((await request(t.app).get(`${REF}/device_requests/${a}`).set('authorization', auth)).status).toBe(404);

    const mixed = [
      JSON.stringify({ kind: 'device_requests', record: deviceRequest(a) }),
      JSON.stringify({ kind: 'device_requests', record: deviceRequest(b) }),
      JSON.stringify({ kind: 'device_requests', record: deviceRequest(b, { version: 1 }) }),
    ].join('\n');
    const loaded = await batch('', mixed);
    expect(loaded.status).toBe(200);
    expect(loaded.body.data).toMatchObject({ lines: 3, written: 2, skipped_older: 1, unchanged: 0, removed: 0 });
    // Again: nothing new; then an older version of one of them is skipped and counted.
    expect((await batch('', mixed)).body.data).toMatchObject({ written: 0, unchanged: 2 });
    await put('device_requests', a, deviceRequest(a, { version: 2, status: 'revoked' }));
    expect((await batch('/device_requests', JSON.stringify(deviceRequest(a)))).body.data).toMatchObject({ written: 0, skipped_older: 1 });
    const conflicting = await batch('/device_requests', JSON.stringify(deviceRequest(a, { version: 2 })));
    expect(conflicting.status).toBe(422);
    expect(conflicting.body.error.message).toBe(`line 1: version: ${a}: version 2 is stored with different content`);
    // The revoked request is refused as not active.
    expectJobConflict(await api.create(createBody(newId(), basedOn(a))), 'Device request is not active');
  });

  it('every change is in the change log: the record as of a time, for audit:read_all only', async () => {
    const id = newId();
    await put('device_requests', id, deviceRequest(id));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const between = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await put('device_requests', id, deviceRequest(id, { version: 2, status: 'expired' }));
    const asOf = (at: string, token = auth) =>
      request(t.app).get(`/api/audit/reference/device_requests/${id}`).query({ as_of: at }).set('authorization', token);
    expect((await asOf(between)).body.data).toMatchObject({ version: 1, record: { status: 'active' } });
    expect((await asOf(new Date().toISOString())).body.data).toMatchObject({ version: 2, record: { status: 'expired' } });
    expect((await asOf('2000-01-01T00:00:00Z')).status).toBe(404);
    const ownOnly = await asOf(between, `Bearer ${await t.token({ scope: 'audit:read' })}`);
    expect(ownOnly.status).toBe(403);
    expect(ownOnly.body.error.message).toBe('Your scope does not allow to access this resource. Missing allowances: audit:read_all');
    const { rows } = await t.server.context.database.pool.query<{ actor: string; old_version: number | null; new_version: number }>(
      `select actor, old_version, new_version from reference_changes where kind = 'device_requests' and id = $1 order by seq`,
      [id],
    );
    expect(rows).toEqual([
      { actor: ids.user, old_version: null, new_version: 1 },
      { actor: ids.user, old_version: 1, new_version: 2 },
    ]);
  });

  it('the creation event records the reference records its checks read, by version', async () => {
    const requestId = fresh();
    const dispense = await api.createInProgress(requestId);
    const [created] = await readWholeStream(t.server.context.eventStore, `device_dispense-${dispense.id}`);
    expect(created!.data.reference).toEqual(
      expect.arrayContaining([
        { kind: 'legal_entities', id: ids.legalEntity, version: expect.any(Number) },
        { kind: 'employees', id: ids.employee, version: expect.any(Number) },
        { kind: 'divisions', id: ids.division, version: 1 },
        { kind: 'persons', id: ids.patient, version: 1 },
        { kind: 'device_requests', id: requestId, version: 1 },
        { kind: 'device_definitions', id: ids.definition, version: 1 },
        { kind: 'medical_programs', id: ids.program, version: 1 },
      ]),
    );
    // The read model's document does not carry it (the official details schema has no such field).
    expect(dispense).not.toHaveProperty('reference');
  });

  it('completing a dispense of a request with a quantity derives a StatusChangeEvent of the DeviceRequest', async () => {
    const requestId = fresh();
    const dispense = await api.createInProgress(requestId);
    await api.complete(dispense);
    const derived = async () =>
      (
        await t.server.context.database.pool.query<{ payload: Record<string, unknown> }>(
          `select payload from event_manager_log where entity_type = 'DeviceRequest' and entity_id = $1`,
          [requestId],
        )
      ).rows.map((r) => r.payload);
    await eventually(async () => (await derived()).length > 0);
    expect(await derived()).toEqual([
      expect.objectContaining({ entity_type: 'DeviceRequest', entity_id: requestId, properties: { status: { new_value: 'COMPLETED' } } }),
    ]);
  });
});
