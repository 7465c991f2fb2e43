/**
 * The `device_dispenses` read model port. Adapters: MongoDB (production) and a PostgreSQL/PGlite JSONB
 * table; one contract suite (test/contract/deviceDispenseStore.contract.test.ts) runs against both.
 *
 * A record is the stored dispense `document` (what GET renders, plus internal fields such as
 * signed_content_links), flat index fields for search, and the stream revision of the last event
 * applied: a write with an older or equal revision is ignored, which makes re-applying a batch harmless.
 */
import type { JsonObject, Position, TransactionalWrite } from '../eventStore/eventStore.js';
import type { CheckpointUpdate } from './checkpoints.js';
import type { Page, PageOf } from './paging.js';
import type { ShadowPurpose, ShadowTable } from './shadowTables.js';

export type DeviceDispenseIndex = {
  patient_id: string;
  legal_entity_id: string;
  status: string;
  based_on: string | null;
  location: string | null;
  performer: string | null;
  program: string | null;
  part_of: string | null;
  encounter: string | null;
  context_episode_id: string | null;
  origin_episode_id: string | null;
  devices: string[];
  device_codes: string[];
  /** ISO-8601 UTC (…Z), so string order is time order. */
  when_handed_over: string | null;
  inserted_at: string;
};

export type DeviceDispenseRecord = {
  id: string;
  /** Stream revision of the last applied event. */
  revision: number;
  index: DeviceDispenseIndex;
  document: JsonObject;
};

export type DeviceDispenseFilter = Partial<{
  patient_id: string;
  legal_entity_id: string;
  status: string;
  based_on: string;
  location: string;
  performer: string;
  program: string;
  part_of: string;
  encounter: string;
  context_episode_id: string;
  origin_episode_id: string;
  device: string;
  device_code: string;
  when_handed_over_from: string;
  when_handed_over_to: string;
  inserted_at_from: string;
  inserted_at_to: string;
}>;

export interface DeviceDispenseStore {
  readonly description: string;
  readCheckpoint(projection: string): Promise<Position | null>;
  /**
   * Writes the records (each only if its revision is newer than the stored one) and moves the
   * checkpoint: in one transaction on PostgreSQL; on MongoDB records first, then the checkpoint
   * (at-least-once, made harmless by the revision guard).
   */
  applyBatch(records: DeviceDispenseRecord[], checkpoint: CheckpointUpdate): Promise<void>;
  /**
   * The same revision-guarded write, for an event append's transaction (inline projection; no
   * checkpoint: the async projection passes these events later and changes nothing). Only where the
   * read model lives in the event store's database (PostgreSQL/PGlite); absent on MongoDB.
   */
  inlineWrite?(records: DeviceDispenseRecord[]): TransactionalWrite;
  get(id: string): Promise<DeviceDispenseRecord | null>;
  getMany(ids: string[]): Promise<Map<string, DeviceDispenseRecord>>;
  /** Ordered by inserted_at descending, then id. */
  search(filter: DeviceDispenseFilter, page: Page): Promise<PageOf<DeviceDispenseRecord>>;
  /** Every record ordered by id, in bounded pages (verification). */
  scan(): AsyncIterable<DeviceDispenseRecord>;
  /**
   * Optional (the PostgreSQL/PGlite table): an empty shadow beside this read model, for a rebuild while
   * serving (blue/green) and for verify. MongoDB has none: its rebuild runs in place.
   */
  openShadow?(projection: string, purpose: ShadowPurpose): Promise<{ store: DeviceDispenseStore; table: ShadowTable }>;
  /** Deletes every record and the projection's checkpoint (rebuild from zero). */
  reset(projection: string): Promise<void>;
  close(): Promise<void>;
}
