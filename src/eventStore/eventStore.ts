import type { Sql } from '../database/database.js';

/**
 * The event store port. Three adapters implement it (PostgreSQL server, PGlite, EventStoreDB) and one
 * contract suite (test/contract/eventStore.contract.test.ts) holds them to the same behaviour.
 */

/**
 * Every event this registry writes carries this; auditors depend on it. Stored beside the data, never
 * inside it. Not parsed when read back: events written by others keep whatever metadata they carry.
 */
export type EventMetadata = {
  /** uuid v7 */
  eventId: string;
  correlationId: string;
  causationId: string | null;
  userId: string | null;
  /** The legal entity of the token (its client_id claim); null for system runs. */
  clientId: string | null;
  occurredAt: string;
  schemaVersion: number;
};

export type JsonObject = { [key: string]: JsonValue };
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;

export type EventToAppend = {
  type: string;
  data: JsonObject;
  metadata: EventMetadata;
};

/**
 * An opaque, totally ordered position in the global log. Only the adapter that produced it can
 * compare it (`comparePositions`); PostgreSQL uses "<xid8>:<global_position>", EventStoreDB
 * "<commit>:<prepare>".
 */
export type Position = string;

export type RecordedEvent = EventToAppend & {
  streamName: string;
  /** 0-based revision of this event inside its stream. */
  revision: bigint;
  position: Position;
  /** The event's link in its stream's hash chain (hex), when the store keeps one (see hashChain.ts). */
  prevHash?: string;
  hash?: string;
};

/** `bigint`: the revision of the stream's last event (exact). */
export type ExpectedRevision = 'any' | 'no_stream' | bigint;

export type AppendResult = {
  /** Revision of the last appended event: pass it as the next exact expected revision. */
  nextExpectedRevision: bigint;
  /** Position of the last appended event; a subscriber at or past it has seen the whole append. */
  position: Position;
};

/** What the writes committing with an append know of it before it is sent: each stream's new last revision. */
export type AppendedRevision = Pick<AppendResult, 'nextExpectedRevision'>;

/** One stream's part of an atomic append (several streams, one transaction). */
export type StreamAppend = { streamName: string; events: EventToAppend[]; expectedRevision: ExpectedRevision };

/**
 * A write that commits in the append's transaction (an inline projection's rows, a job's outcome).
 * Parameters are numbered from $1 in each; the adapter sends all of them as one statement.
 */
export type TransactionalWrite = { text: string; values: unknown[] };

export class WrongExpectedRevisionError extends Error {
  constructor(
    readonly streamName: string,
    readonly expected: ExpectedRevision,
    readonly actual: bigint | 'no_stream' | 'unknown',
  ) {
    super(`Wrong expected revision on ${streamName}: expected ${String(expected)}, actual ${String(actual)}`);
    this.name = 'WrongExpectedRevisionError';
  }
}

export type ReadStreamOptions = { fromRevision?: bigint; maxCount?: number };
/** `after` is exclusive; omit it to read from the beginning. */
export type ReadAllOptions = { after?: Position | null; maxCount: number };
/** Where a stream-ordered read stopped: the last (stream, revision) it returned. */
export type StreamCursor = { streamName: string; revision: bigint };
/** `streamPrefixes`: only streams whose names start with one of these (all streams when absent). */
export type ReadByStreamOptions = { after: StreamCursor | null; until: Position; maxCount: number; streamPrefixes?: readonly string[] };

export type SubscriptionHandler = (events: RecordedEvent[]) => Promise<void>;
export type SubscribeOptions = {
  /** Exclusive; null = from the beginning. */
  after: Position | null;
  batchSize?: number;
  onEvents: SubscriptionHandler;
  /** Called when the handler or the connection failed; the subscription retries from the last
   * position whose handler resolved. */
  onError?: (error: unknown) => void;
  /** Called when reading works again after `onError` (the end of an outage). */
  onRecovered?: () => void;
};
export interface Subscription {
  /** Resolves once the subscription stopped and no handler call is running. */
  stop(): Promise<void>;
}

export interface EventStore {
  readonly kind: 'postgres' | 'pglite' | 'eventstoredb';
  appendToStream(streamName: string, events: EventToAppend[], options: { expectedRevision: ExpectedRevision }): Promise<AppendResult>;
  /** Reads in pages internally, never unbounded. An unknown stream yields nothing. */
  readStream(streamName: string, options?: ReadStreamOptions): AsyncIterable<RecordedEvent>;
  /**
   * Optional (PostgreSQL/PGlite): several short streams, whole, in one round trip (a command that
   * reads another stream besides its own). Unknown streams map to no events.
   */
  readStreams?(streamNames: readonly string[]): Promise<Map<string, RecordedEvent[]>>;
  /** One page of the global log, in order, only events that can no longer be preceded by others. */
  readAll(options: ReadAllOptions): Promise<RecordedEvent[]>;
  /**
   * Optional: one page of the events at or before `until` (a position a reader has seen), ordered by
   * stream and revision instead of by the log. A rebuild from zero of per-stream read models reads
   * this way (each stream's events arrive together, so each record is written about once). The events
   * carry no hash chain links (`prevHash`, `hash`): read models do not need them.
   */
  readByStream?(options: ReadByStreamOptions): Promise<RecordedEvent[]>;
  /**
   * Optional (PostgreSQL/PGlite): whether `sql` (e.g. a transaction holding a read model's lock) sees a
   * committed event after `after` in streams with one of these prefixes. A blue/green swap uses it so
   * that rows commands wrote inline in the same database are never left behind.
   */
  hasEventsAfter?(sql: Sql, after: Position | null, streamPrefixes?: readonly string[]): Promise<boolean>;
  /** Catch up from `after`, then follow live, delivering batches in global order. */
  subscribe(options: SubscribeOptions): Subscription;
  /** Position of the last event a reader can see now, or null for an empty store. */
  headPosition(): Promise<Position | null>;
  /** Number of events after `after` that a reader can see now (projection lag). */
  countAfter(after: Position | null): Promise<number>;
  comparePositions(a: Position, b: Position): number;
  close(): Promise<void>;
}

/** Reads a whole stream into memory: for aggregates, whose streams are short. */
export async function readWholeStream(store: Pick<EventStore, 'readStream'>, streamName: string): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  for await (const event of store.readStream(streamName)) events.push(event);
  return events;
}

/** What reading aggregates needs of a store (a command may read through a view of prefetched streams). */
export type StreamReader = Pick<EventStore, 'readStream'>;

/**
 * Whole streams read together: one round trip where the store can (`readStreams`), and a reader that
 * serves them from memory; other streams (and paged reads) go to the store.
 */
export async function readStreamsTogether(
  store: EventStore,
  streamNames: readonly string[],
): Promise<{ events: Map<string, RecordedEvent[]>; reader: StreamReader }> {
  let events: Map<string, RecordedEvent[]>;
  if (store.readStreams) events = await store.readStreams(streamNames);
  else {
    events = new Map();
    for (const name of streamNames) events.set(name, await readWholeStream(store, name));
  }
  return { events, reader: readerWith(store, events) };
}

async function* fromMemory(read: RecordedEvent[]) {
  yield* read;
}

/** A reader that serves these whole streams (read already, or known empty) from memory; the rest, and paged reads, from the store. */
export function readerWith(store: StreamReader, events: ReadonlyMap<string, RecordedEvent[]>): StreamReader {
  return {
    readStream: (streamName, options) => {
      const read = options ? undefined : events.get(streamName);
      return read ? fromMemory(read) : store.readStream(streamName, options);
    },
  };
}

export const isAtOrPast = (store: EventStore, position: Position | null, target: Position): boolean =>
  position !== null && store.comparePositions(position, target) >= 0;
