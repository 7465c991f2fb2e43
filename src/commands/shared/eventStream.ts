/**
 * Loading an aggregate (fold its stream with the decider's evolve) and appending its new events with
 * the revision it was loaded at, each event carrying the metadata auditors rely on.
 */
import { uuidv7 } from '../../shared/uuidv7.js';
import { conflict } from '../../domain/shared/esozError.js';
import type { Decider } from '../../domain/shared/decider.js';
import {
  readWholeStream,
  WrongExpectedRevisionError,
  type AppendResult,
  type EventStore,
  type EventToAppend,
  type ExpectedRevision,
  type JsonObject,
  type Position,
  type RecordedEvent,
  type StreamReader,
} from '../../eventStore/eventStore.js';
import type { Caller } from './commandContext.js';

export type DomainEvent = { type: string; data: object };

export type LoadedAggregate<State> = { state: State; revision: ExpectedRevision; events: RecordedEvent[] };

export async function loadAggregate<State, Event extends DomainEvent>(
  store: StreamReader,
  streamName: string,
  decider: Pick<Decider<State, never, Event>, 'evolve' | 'initialState'>,
  parse: (event: RecordedEvent) => Event,
): Promise<LoadedAggregate<State>> {
  return foldAggregate(await readWholeStream(store, streamName), decider, parse);
}

/** An aggregate from its stream's events (read already). */
export function foldAggregate<State, Event extends DomainEvent>(
  events: RecordedEvent[],
  decider: Pick<Decider<State, never, Event>, 'evolve' | 'initialState'>,
  parse: (event: RecordedEvent) => Event,
): LoadedAggregate<State> {
  const state = events.map(parse).reduce(decider.evolve, decider.initialState());
  return { state, revision: events.length ? events[events.length - 1]!.revision : 'no_stream', events };
}

const SCHEMA_VERSION = 1;

export async function appendEvents(
  store: EventStore,
  streamName: string,
  events: DomainEvent[],
  expectedRevision: ExpectedRevision,
  caller: Caller<string | null>,
  now: Date,
): Promise<AppendResult> {
  return store.appendToStream(streamName, toEventsToAppend(events, caller, now), { expectedRevision });
}

/** The domain events with the metadata every stored event carries. */
export function toEventsToAppend(events: DomainEvent[], caller: Caller<string | null>, now: Date): EventToAppend[] {
  return events.map((event) => ({
    type: event.type,
    // Domain event data are plain JSON by construction (zod schemas of JSON documents).
    data: event.data as JsonObject,
    metadata: {
      eventId: uuidv7(),
      correlationId: caller.correlationId,
      causationId: caller.causationId,
      userId: caller.userId,
      // Stored under its historical name: the legal entity of the token (client_id).
      clientId: caller.legalEntityId,
      occurredAt: now.toISOString(),
      schemaVersion: SCHEMA_VERSION,
    },
  }));
}

/**
 * Each causation id that wrote to the stream, and the position of its last event: a job re-run after
 * a crash whose id is there already wrote, and must not write twice.
 */
export function causationsOf(events: readonly RecordedEvent[]): Map<string, Position> {
  const causations = new Map<string, Position>();
  for (const { metadata, position } of events) if (metadata.causationId !== null) causations.set(metadata.causationId, position);
  return causations;
}

/**
 * Runs a command again when another writer got in between our read and our append: the checks run
 * again on the new state, so the loser of a race gets the answer the new state gives (e.g. 409).
 */
export async function retryOnConflict<T>(attempt: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof WrongExpectedRevisionError)) throw error;
      if (i >= attempts) throw conflict('The request could not be completed due to a conflict with the current state of the resource.');
    }
  }
}
