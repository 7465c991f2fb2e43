import { describe, expect, it } from '@jest/globals';
import { MongoBulkWriteError, type BulkWriteResult, type WriteError } from 'mongodb';
import type { DeviceDispenseRecord } from '../../src/readModels/deviceDispenseStore.js';
import {
  buildDeviceDispenseQuery,
  databaseFromUrl,
  isStaleRevisionOnly,
  pageWindow,
  toRecord,
  upsertOperations,
} from '../../src/readModels/mongoDeviceDispenseStore.js';
import { searchLowerBound, searchUpperBound } from '../../src/readModels/searchBounds.js';

const PATIENT = '0b6b7a4e-3f57-4c1e-9a52-6f3c1d2e4b10';
const LEGAL_ENTITY = '5c1d8e2f-7a64-4b39-8e0d-2f9a6b3c1e77';

function record(id: string, revision: number): DeviceDispenseRecord {
  return {
    id,
    revision,
    index: {
      patient_id: PATIENT,
      legal_entity_id: LEGAL_ENTITY,
      status: 'completed',
      based_on: null,
      location: null,
      performer: null,
      program: null,
      part_of: null,
      encounter: null,
      context_episode_id: null,
      origin_episode_id: null,
      devices: [],
      device_codes: [],
      when_handed_over: null,
      inserted_at: '2024-01-31T10:00:00.000Z',
    },
    document: { id, status: 'completed' },
  };
}

// WriteError and BulkWriteResult aren't constructible from the public runtime API; the predicate only
// reads `code` and `getWriteConcernError()`, so minimal stand-ins are enough.
function bulkError(codes: number[], writeConcernError?: { code: number; errmsg: string }): MongoBulkWriteError {
  const writeErrors = codes.map((code, index) => ({ code, index, errmsg: `E${code}` }) as unknown as WriteError);
  const result = { getWriteConcernError: () => writeConcernError } as unknown as BulkWriteResult;
  return new MongoBulkWriteError({ message: 'bulk failed', code: codes[0] ?? 0, writeErrors }, result);
}

describe('search bounds', () => {
  it('widens a date-only lower bound to the start of the day', () => {
    expect(searchLowerBound('2024-01-31')).toBe('2024-01-31T00:00:00.000Z');
  });

  it('widens a date-only upper bound to the end of the day', () => {
    expect(searchUpperBound('2024-01-31')).toBe('2024-01-31T23:59:59.999Z');
  });

  it('leaves full timestamps unchanged', () => {
    expect(searchLowerBound('2024-01-31T08:15:00Z')).toBe('2024-01-31T08:15:00Z');
    expect(searchUpperBound('2024-01-31T08:15:00.123Z')).toBe('2024-01-31T08:15:00.123Z');
  });

  it('keeps a timestamp from late on the last day inside a date-only range', () => {
    const stored = '2024-01-31T23:59:59.500Z';
    expect(stored >= searchLowerBound('2024-01-31') && stored <= searchUpperBound('2024-01-31')).toBe(true);
    expect('2024-02-01T00:00:00.000Z' <= searchUpperBound('2024-01-31')).toBe(false);
  });
});

describe('buildDeviceDispenseQuery', () => {
  it('matches everything for an empty filter', () => {
    expect(buildDeviceDispenseQuery({})).toEqual({});
  });

  it('maps every exact key onto its index field', () => {
    expect(
      buildDeviceDispenseQuery({
        patient_id: PATIENT,
        legal_entity_id: LEGAL_ENTITY,
        status: 'completed',
        based_on: 'req-1',
        location: 'loc-1',
        performer: 'emp-1',
        program: 'prog-1',
        part_of: 'proc-1',
        encounter: 'enc-1',
        context_episode_id: 'ep-1',
        origin_episode_id: 'ep-2',
      }),
    ).toEqual({
      'index.patient_id': PATIENT,
      'index.legal_entity_id': LEGAL_ENTITY,
      'index.status': 'completed',
      'index.based_on': 'req-1',
      'index.location': 'loc-1',
      'index.performer': 'emp-1',
      'index.program': 'prog-1',
      'index.part_of': 'proc-1',
      'index.encounter': 'enc-1',
      'index.context_episode_id': 'ep-1',
      'index.origin_episode_id': 'ep-2',
    });
  });

  it('matches device and device_code as array membership', () => {
    expect(buildDeviceDispenseQuery({ device: 'dev-1', device_code: 'code-1' })).toEqual({
      'index.devices': 'dev-1',
      'index.device_codes': 'code-1',
    });
  });

  it('turns _from/_to into inclusive string ranges with date-only bounds widened', () => {
    expect(
      buildDeviceDispenseQuery({
        when_handed_over_from: '2024-01-01',
        when_handed_over_to: '2024-01-31',
        inserted_at_from: '2024-01-05T10:00:00.000Z',
      }),
    ).toEqual({
      'index.when_handed_over': { $gte: '2024-01-01T00:00:00.000Z', $lte: '2024-01-31T23:59:59.999Z' },
      'index.inserted_at': { $gte: '2024-01-05T10:00:00.000Z' },
    });
    expect(buildDeviceDispenseQuery({ inserted_at_to: '2024-02-29' })).toEqual({
      'index.inserted_at': { $lte: '2024-02-29T23:59:59.999Z' },
    });
  });

  it('ignores keys that are present but undefined', () => {
    expect(buildDeviceDispenseQuery({ patient_id: undefined, when_handed_over_from: undefined })).toEqual({});
  });
});

describe('pageWindow', () => {
  it('turns a 1-based page into skip/limit', () => {
    expect(pageWindow({ page: 1, pageSize: 20 })).toEqual({ skip: 0, limit: 20 });
    expect(pageWindow({ page: 3, pageSize: 20 })).toEqual({ skip: 40, limit: 20 });
  });

  it('never produces a negative skip or a limit that Mongo reads as "unlimited"', () => {
    expect(pageWindow({ page: 0, pageSize: 20 })).toEqual({ skip: 0, limit: 20 });
    expect(pageWindow({ page: 2, pageSize: 0 })).toEqual({ skip: 0, limit: 0 });
  });
});

describe('databaseFromUrl', () => {
  it('reads the database from the path', () => {
    expect(databaseFromUrl('mongodb://localhost:27017/registry')).toBe('registry');
    expect(databaseFromUrl('mongodb://u:p@h1:27017,h2:27017/registry?replicaSet=rs0')).toBe('registry');
    expect(databaseFromUrl('mongodb+srv://cluster.example.net/reg%2Dprod?retryWrites=true')).toBe('reg-prod');
  });

  it('returns null when the URL names no database', () => {
    expect(databaseFromUrl('mongodb://localhost:27017')).toBeNull();
    expect(databaseFromUrl('mongodb://localhost:27017/')).toBeNull();
    expect(databaseFromUrl('mongodb://localhost:27017/?directConnection=true')).toBeNull();
  });
});

describe('upsertOperations', () => {
  it('guards each upsert by a lower stored revision and never writes _id in $set', () => {
    const rec = record('dd-1', 4);
    expect(upsertOperations([rec])).toEqual([
      {
        updateOne: {
          filter: { _id: 'dd-1', revision: { $lt: 4 } },
          update: { $set: { revision: 4, index: rec.index, document: rec.document } },
          upsert: true,
        },
      },
    ]);
  });

  it('keeps only the newest revision of an id that appears twice in a batch', () => {
    const ops = upsertOperations([record('dd-1', 2), record('dd-2', 0), record('dd-1', 5), record('dd-1', 3)]);
    expect(ops).toHaveLength(2);
    expect(ops).toContainEqual(expect.objectContaining({ updateOne: expect.objectContaining({ filter: { _id: 'dd-1', revision: { $lt: 5 } } }) }));
    expect(ops).toContainEqual(expect.objectContaining({ updateOne: expect.objectContaining({ filter: { _id: 'dd-2', revision: { $lt: 0 } } }) }));
  });
});

describe('toRecord', () => {
  it('renames _id to id and drops nothing else', () => {
    const rec = record('dd-9', 7);
    expect(toRecord({ _id: rec.id, revision: rec.revision, index: rec.index, document: rec.document })).toEqual(rec);
  });
});

describe('isStaleRevisionOnly', () => {
  it('accepts a bulk error made only of duplicate-key errors', () => {
    expect(isStaleRevisionOnly(bulkError([11000]))).toBe(true);
    expect(isStaleRevisionOnly(bulkError([11000, 11000]))).toBe(true);
  });

  it('rejects any other write error mixed in', () => {
    expect(isStaleRevisionOnly(bulkError([11000, 121]))).toBe(false);
  });

  it('rejects a bulk error that also carries a write-concern error', () => {
    expect(isStaleRevisionOnly(bulkError([11000], { code: 64, errmsg: 'waiting for replication timed out' }))).toBe(false);
  });

  it('rejects a bulk error without write errors (driver/network failure) and non-bulk errors', () => {
    expect(isStaleRevisionOnly(bulkError([]))).toBe(false);
    expect(isStaleRevisionOnly(new Error('E11000 duplicate key'))).toBe(false);
  });
});
