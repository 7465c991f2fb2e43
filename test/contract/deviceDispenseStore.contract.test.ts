/**
 * One contract for the `device_dispenses` read-model adapters: the PostgreSQL JSONB table (PGlite
 * always, the server when DATABASE_URL is set) and MongoDB (when MONGO_URL is set).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { v4 as uuidv4 } from 'uuid';
import { CheckpointMismatchError } from '../../src/readModels/checkpoints.js';
import type { DeviceDispenseIndex, DeviceDispenseRecord, DeviceDispenseStore } from '../../src/readModels/deviceDispenseStore.js';
import { deviceDispenseStoreAdapters } from '../support/storeCombinations.js';

// The adapters come from the store-combination table the end-to-end suite runs on.
const adapters = deviceDispenseStoreAdapters();

const index = (overrides: Partial<DeviceDispenseIndex> = {}): DeviceDispenseIndex => ({
  patient_id: 'patient-1',
  legal_entity_id: 'le-1',
  status: 'in_progress',
  based_on: 'dr-1',
  location: 'division-1',
  performer: 'employee-1',
  program: 'program-1',
  part_of: null,
  encounter: null,
  context_episode_id: null,
  origin_episode_id: null,
  devices: ['definition-1'],
  device_codes: ['30221'],
  when_handed_over: null,
  inserted_at: '2026-01-10T10:00:00.000Z',
  ...overrides,
});
const record = (id: string, revision: number, overrides: Partial<DeviceDispenseIndex> = {}): DeviceDispenseRecord => {
  const idx = index(overrides);
  return { id, revision, index: idx, document: { id, status: idx.status, revision_seen: revision } };
};

describe.each(adapters)('device_dispenses store contract: $name', (adapter) => {
  let store: DeviceDispenseStore;
  let close: () => Promise<void>;
  const projection = `test-${uuidv4()}`;
  let checkpoint: string | null = null;
  const apply = async (records: DeviceDispenseRecord[]) => {
    const to = `0:${Math.floor(Math.random() * 1e9)}-${uuidv4()}`;
    await store.applyBatch(records, { projection, from: checkpoint, to });
    checkpoint = to;
  };

  beforeAll(async () => {
    ({ store, close } = await adapter.open());
  });
  afterAll(async () => close());

  it('stores records with the checkpoint, and reads them back by id', async () => {
    expect(await store.readCheckpoint(projection)).toBeNull();
    await apply([record('dd-1', 0), record('dd-2', 0, { status: 'completed' })]);
    expect(await store.readCheckpoint(projection)).toBe(checkpoint);
    expect(await store.get('dd-1')).toEqual(record('dd-1', 0));
    expect(await store.get('missing')).toBeNull();
    const many = await store.getMany(['dd-1', 'dd-2', 'missing']);
    expect([...many.keys()].sort()).toEqual(['dd-1', 'dd-2']);
    expect(many.get('dd-2')!.index.status).toBe('completed');
  });

  it('stores hostile text exactly as given, in batches larger than one statement takes', async () => {
    const hostile = `$1 $2::json '); drop table x; -- "quoted" \\ back\\slash \u2028 ї 😀 \u0001 {"a":1}`;
    const records = Array.from({ length: 250 }, (_, i) => {
      const r = record(`hostile-${i}-'"$1`, 0, { patient_id: hostile, based_on: hostile });
      return { ...r, document: { ...r.document, note: hostile, nested: { [hostile]: [hostile, i] } } };
    });
    await apply(records);
    for (const i of [0, 99, 100, 249]) expect(await store.get(`hostile-${i}-'"$1`)).toEqual(records[i]);
    expect((await store.search({ patient_id: hostile }, { page: 1, pageSize: 1 })).total).toBe(250);
  });

  it('replaces a record only with a newer revision, so a replayed batch changes nothing', async () => {
    await apply([record('dd-1', 2, { status: 'stopped' })]);
    await apply([record('dd-1', 1, { status: 'completed' }), record('dd-1', 2, { status: 'entered_in_error' })]);
    expect((await store.get('dd-1'))!.index.status).toBe('stopped');
    expect((await store.get('dd-1'))!.revision).toBe(2);
    // Several revisions of one new record in one batch: the newest wins.
    await apply([record('dd-3', 0), record('dd-3', 2, { status: 'stopped' }), record('dd-3', 1, { status: 'completed' })]);
    expect((await store.get('dd-3'))!.index.status).toBe('stopped');
  });

  it('moves the checkpoint only from the value the batch started at', async () => {
    const stale = { projection, from: 'not-the-stored-one', to: 'somewhere-else' };
    await expect(store.applyBatch([record('dd-9', 0)], stale)).rejects.toBeInstanceOf(CheckpointMismatchError);
    // Re-applying a batch that already moved the checkpoint to `to` is harmless.
    await store.applyBatch([], { projection, from: 'whatever', to: checkpoint! });
    expect(await store.readCheckpoint(projection)).toBe(checkpoint);
  });

  it('searches by every filter, ANDed, newest first, with paging and totals', async () => {
    const le = `le-${uuidv4()}`;
    const records = [
      record('s-1', 0, { legal_entity_id: le, patient_id: 'p-a', inserted_at: '2026-02-01T08:00:00.000Z', when_handed_over: '2026-02-01T09:00:00.000Z' }),
      record('s-2', 0, {
        legal_entity_id: le,
        patient_id: 'p-a',
        status: 'completed',
        inserted_at: '2026-02-02T08:00:00.000Z',
        devices: ['def-x', 'def-y'],
        device_codes: ['777'],
      }),
      record('s-3', 0, {
        legal_entity_id: le,
        patient_id: 'p-b',
        inserted_at: '2026-02-03T23:59:00.000Z',
        based_on: 'dr-9',
        location: 'div-9',
        performer: 'emp-9',
        program: 'prog-9',
      }),
      record('s-4', 0, {
        legal_entity_id: le,
        patient_id: 'p-b',
        inserted_at: '2026-02-03T23:59:00.000Z',
        part_of: 'proc-1',
        encounter: 'enc-1',
        context_episode_id: 'ep-1',
        origin_episode_id: 'ep-2',
      }),
    ];
    await apply(records);
    const ids = async (filter: Parameters<DeviceDispenseStore['search']>[0], page = { page: 1, pageSize: 50 }) =>
      (await store.search({ legal_entity_id: le, ...filter }, page)).items.map((r) => r.id);

    expect(await ids({})).toEqual(['s-3', 's-4', 's-2', 's-1']); // inserted_at desc, then id
    expect(await ids({ patient_id: 'p-a' })).toEqual(['s-2', 's-1']);
    expect(await ids({ status: 'completed' })).toEqual(['s-2']);
    expect(await ids({ based_on: 'dr-9' })).toEqual(['s-3']);
    expect(await ids({ location: 'div-9', performer: 'emp-9', program: 'prog-9' })).toEqual(['s-3']);
    expect(await ids({ location: 'div-9', performer: 'someone-else' })).toEqual([]);
    expect(await ids({ part_of: 'proc-1', encounter: 'enc-1', context_episode_id: 'ep-1', origin_episode_id: 'ep-2' })).toEqual(['s-4']);
    expect(await ids({ device: 'def-y' })).toEqual(['s-2']);
    expect(await ids({ device_code: '777' })).toEqual(['s-2']);
    expect(await ids({ when_handed_over_from: '2026-02-01', when_handed_over_to: '2026-02-01' })).toEqual(['s-1']);
    expect(await ids({ inserted_at_from: '2026-02-02', inserted_at_to: '2026-02-03' })).toEqual(['s-3', 's-4', 's-2']);
    expect(await ids({ inserted_at_to: '2026-02-01T08:00:00.000Z' })).toEqual(['s-1']);

    const page2 = await store.search({ legal_entity_id: le }, { page: 2, pageSize: 3 });
    expect(page2.total).toBe(4);
    expect(page2.items.map((r) => r.id)).toEqual(['s-1']);
  });

  it('scans every record in id order, across pages', async () => {
    const batch = Array.from({ length: 620 }, (_, i) => record(`scan-${String(i).padStart(4, '0')}`, 0));
    await apply(batch);
    const scanned: string[] = [];
    for await (const r of store.scan()) scanned.push(r.id);
    const mine = scanned.filter((id) => id.startsWith('scan-'));
    expect(mine).toEqual(batch.map((r) => r.id));
    expect([...scanned].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(scanned);
  });

  it('resets to empty, forgetting the checkpoint', async () => {
    await store.reset(projection);
    expect(await store.readCheckpoint(projection)).toBeNull();
    expect(await store.get('dd-1')).toBeNull();
    expect((await store.search({}, { page: 1, pageSize: 10 })).total).toBe(0);
  });
});
