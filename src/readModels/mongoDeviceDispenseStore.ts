/**
 * MongoDB adapter of the `device_dispenses` read model. No transactions (they need a replica set):
 * records are written first with a revision guard, then the checkpoint is moved with a compare-and-set,
 * so a crash in between only replays writes that the guard turns into no-ops.
 */
import {
  MongoBulkWriteError,
  MongoClient,
  MongoServerError,
  type AnyBulkWriteOperation,
  type Collection,
  type Filter,
  type Sort,
  // Type-only: the driver declares WriteError as a class but does not export it at runtime.
  type WriteError,
} from 'mongodb';
import type { JsonObject, Position } from '../eventStore/eventStore.js';
import { CheckpointMismatchError, type CheckpointUpdate } from './checkpoints.js';
import type { DeviceDispenseFilter, DeviceDispenseIndex, DeviceDispenseRecord, DeviceDispenseStore } from './deviceDispenseStore.js';
import type { Page, PageOf } from './paging.js';
import { searchLowerBound, searchUpperBound } from './searchBounds.js';

export type DeviceDispenseDocument = {
  _id: string;
  revision: number;
  index: DeviceDispenseIndex;
  document: JsonObject;
};

export type CheckpointDocument = { _id: string; position: Position | null };

export type MongoDeviceDispenseStoreOptions = {
  database?: string;
  collection?: string;
  checkpointsCollection?: string;
};

const DEFAULT_DATABASE = 'esoz';
const DEFAULT_COLLECTION = 'device_dispenses';
const DEFAULT_CHECKPOINTS_COLLECTION = 'projection_checkpoints';
const DUPLICATE_KEY = 11000;
export const SCAN_PAGE_SIZE = 500;

/** inserted_at descending, then _id as a stable tie-breaker so pages never overlap. */
const SEARCH_SORT: Sort = { 'index.inserted_at': -1, _id: 1 };

/** Filter keys that are a plain equality on the index field of the same name. */
const EXACT_FIELDS = [
  'patient_id',
  'legal_entity_id',
  'status',
  'based_on',
  'location',
  'performer',
  'program',
  'part_of',
  'encounter',
  'context_episode_id',
  'origin_episode_id',
] as const satisfies ReadonlyArray<keyof DeviceDispenseFilter & keyof DeviceDispenseIndex>;

type StringRange = { $gte?: string; $lte?: string };

function range(from: string | undefined, to: string | undefined): StringRange | null {
  if (from === undefined && to === undefined) return null;
  const r: StringRange = {};
  if (from !== undefined) r.$gte = searchLowerBound(from);
  if (to !== undefined) r.$lte = searchUpperBound(to);
  return r;
}

/** Translates a search filter into a Mongo query; absent keys add no condition, present ones are ANDed. */
export function buildDeviceDispenseQuery(filter: DeviceDispenseFilter): Filter<DeviceDispenseDocument> {
  const query: Filter<DeviceDispenseDocument> = {};
  for (const field of EXACT_FIELDS) {
    const value = filter[field];
    if (value !== undefined) query[`index.${field}`] = value;
  }
  // An equality on an array field matches when the array contains the value.
  if (filter.device !== undefined) query['index.devices'] = filter.device;
  if (filter.device_code !== undefined) query['index.device_codes'] = filter.device_code;
  const handedOver = range(filter.when_handed_over_from, filter.when_handed_over_to);
  if (handedOver) query['index.when_handed_over'] = handedOver;
  const inserted = range(filter.inserted_at_from, filter.inserted_at_to);
  if (inserted) query['index.inserted_at'] = inserted;
  return query;
}

/** skip/limit for a 1-based page; limit 0 means "return nothing" (Mongo's limit(0) would mean "no limit"). */
export function pageWindow(page: Page): { skip: number; limit: number } {
  const limit = Math.max(0, Math.floor(page.pageSize));
  const skip = Math.max(0, (Math.floor(page.page) - 1) * limit);
  return { skip, limit };
}

/** Database named in the connection string's path, or null (the driver would silently default to 'test'). */
export function databaseFromUrl(url: string): string | null {
  // Hosts can't contain '/', so the path starts at the first '/' after "://" (multi-host lists included).
  const match = /^mongodb(?:\+srv)?:\/\/[^/?#]*\/([^?#]*)/i.exec(url);
  const raw = match?.[1];
  if (!raw) return null;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

export function toRecord(doc: DeviceDispenseDocument): DeviceDispenseRecord {
  return { id: doc._id, revision: doc.revision, index: doc.index, document: doc.document };
}

function isList<T>(value: T | ReadonlyArray<T>): value is ReadonlyArray<T> {
  return Array.isArray(value);
}

/**
 * True when a bulk write failed only because some guarded upserts hit an existing _id: the filter
 * `{_id, revision: {$lt}}` didn't match, so the stored document is at an equal or newer revision.
 * Anything else (other write errors, write-concern errors, network errors) must surface.
 */
export function isStaleRevisionOnly(error: unknown): boolean {
  if (!(error instanceof MongoBulkWriteError)) return false;
  // Typed OneOrMore; the driver always sets an array, but don't rely on it.
  const writeErrors: ReadonlyArray<WriteError> = isList(error.writeErrors) ? error.writeErrors : [error.writeErrors];
  if (writeErrors.length === 0) return false;
  if (!writeErrors.every((e) => e.code === DUPLICATE_KEY)) return false;
  // With write errors present, a write-concern error is only reported on the result.
  return error.result.getWriteConcernError() === undefined;
}

/** Guarded upserts, one per id (the newest revision wins if a batch holds several for one id). */
export function upsertOperations(records: DeviceDispenseRecord[]): AnyBulkWriteOperation<DeviceDispenseDocument>[] {
  const newest = new Map<string, DeviceDispenseRecord>();
  for (const rec of records) {
    const seen = newest.get(rec.id);
    if (!seen || rec.revision > seen.revision) newest.set(rec.id, rec);
  }
  return [...newest.values()].map((rec) => ({
    updateOne: {
      filter: { _id: rec.id, revision: { $lt: rec.revision } },
      update: { $set: { revision: rec.revision, index: rec.index, document: rec.document } },
      upsert: true,
    },
  }));
}

export async function createMongoDeviceDispenseStore(url: string, options: MongoDeviceDispenseStoreOptions = {}): Promise<DeviceDispenseStore> {
  const databaseName = options.database ?? databaseFromUrl(url) ?? DEFAULT_DATABASE;
  const collectionName = options.collection ?? DEFAULT_COLLECTION;
  const checkpointsName = options.checkpointsCollection ?? DEFAULT_CHECKPOINTS_COLLECTION;

  const client = new MongoClient(url);
  await client.connect();
  const db = client.db(databaseName);
  const records: Collection<DeviceDispenseDocument> = db.collection<DeviceDispenseDocument>(collectionName);
  const checkpoints: Collection<CheckpointDocument> = db.collection<CheckpointDocument>(checkpointsName);

  try {
    // createIndexes is a no-op for indexes that already exist with the same spec.
    // _id ends the compound keys so the (inserted_at desc, _id) sort is served by the index.
    await records.createIndexes([
      { key: { 'index.patient_id': 1, 'index.inserted_at': -1, _id: 1 } },
      { key: { 'index.legal_entity_id': 1, 'index.inserted_at': -1, _id: 1 } },
      { key: { 'index.based_on': 1 } },
      { key: { 'index.status': 1 } },
    ]);
  } catch (error) {
    await client.close();
    throw error;
  }

  async function readCheckpoint(projection: string): Promise<Position | null> {
    const doc = await checkpoints.findOne({ _id: projection });
    return doc?.position ?? null;
  }

  async function moveCheckpoint({ projection, from, to }: CheckpointUpdate): Promise<void> {
    let moved: boolean;
    if (from === null) {
      // `position: null` also matches a missing field; the upsert creates the first checkpoint.
      try {
        await checkpoints.updateOne({ _id: projection, position: null }, { $set: { position: to } }, { upsert: true });
        moved = true;
      } catch (error) {
        // Duplicate _id: a checkpoint with some other position already exists.
        if (!(error instanceof MongoServerError && error.code === DUPLICATE_KEY)) throw error;
        moved = false;
      }
    } else {
      const result = await checkpoints.updateOne({ _id: projection, position: from }, { $set: { position: to } });
      moved = result.matchedCount === 1;
    }
    // Positions are opaque, so only equality is decidable: already at `to` means this batch was applied.
    if (!moved && (await readCheckpoint(projection)) !== to) throw new CheckpointMismatchError(projection);
  }

  return {
    description: `mongodb ${databaseName}.${collectionName}`,

    readCheckpoint,

    async applyBatch(batch: DeviceDispenseRecord[], checkpoint: CheckpointUpdate): Promise<void> {
      const operations = upsertOperations(batch);
      if (operations.length > 0) {
        try {
          // Unordered: a stale record must not stop the others.
          await records.bulkWrite(operations, { ordered: false });
        } catch (error) {
          if (!isStaleRevisionOnly(error)) throw error;
        }
      }
      await moveCheckpoint(checkpoint);
    },

    async get(id: string): Promise<DeviceDispenseRecord | null> {
      const doc = await records.findOne({ _id: id });
      return doc ? toRecord(doc) : null;
    },

    async getMany(ids: string[]): Promise<Map<string, DeviceDispenseRecord>> {
      const found = new Map<string, DeviceDispenseRecord>();
      if (ids.length === 0) return found;
      const docs = await records.find({ _id: { $in: [...new Set(ids)] } }).toArray();
      for (const doc of docs) found.set(doc._id, toRecord(doc));
      return found;
    },

    async search(filter: DeviceDispenseFilter, page: Page): Promise<PageOf<DeviceDispenseRecord>> {
      const query = buildDeviceDispenseQuery(filter);
      const { skip, limit } = pageWindow(page);
      const [docs, total] = await Promise.all([
        limit === 0 ? Promise.resolve([]) : records.find(query, { sort: SEARCH_SORT, skip, limit }).toArray(),
        records.countDocuments(query),
      ]);
      return { items: docs.map(toRecord), total };
    },

    async *scan(): AsyncGenerator<DeviceDispenseRecord> {
      // Keyset pagination on _id: bounded memory, and no cursor kept open across slow consumers.
      let after: string | null = null;
      for (;;) {
        const query: Filter<DeviceDispenseDocument> = after === null ? {} : { _id: { $gt: after } };
        const docs = await records.find(query, { sort: { _id: 1 }, limit: SCAN_PAGE_SIZE }).toArray();
        for (const doc of docs) yield toRecord(doc);
        const last = docs.at(-1);
        if (docs.length < SCAN_PAGE_SIZE || last === undefined) return;
        after = last._id;
      }
    },

    async reset(projection: string): Promise<void> {
      // Checkpoint first: a crash in between then means "replay from zero" over leftover records, which
      // the revision guard tolerates; the other order could resume mid-log over an empty collection.
      await checkpoints.deleteOne({ _id: projection });
      await records.deleteMany({});
    },

    async close(): Promise<void> {
      await client.close();
    },
  };
}
