/**
 * The command handler every command runs through (the shape of Emmett's handleCommandWithDecider):
 *
 *   retry on conflict → load the stream → already handled by this caller? → the command's checks and
 *   the decider → append with the revision it read.
 *
 * "Load" starts from this process's aggregate cache when it holds the stream (see aggregateCache.ts):
 * only an append guarded by the cached revision is kept from such an attempt; a refusal, a no-op or a
 * lost race runs the command again on the stream as read.
 *
 * A stream marked `usuallyNew` (a Create: its id is the client's, new in almost every call) is first
 * decided on as empty, without a read, where the appends commit together: its append, guarded by
 * 'no_stream' on every stream it assumed empty, fails if any was not, and the command then runs on the
 * streams as read (a refusal or no-op on the assumed state, too, as for a cached attempt).
 *
 * A command file keeps only its seed-ordered checks and its decider call (`decide` below). When another
 * writer appends between our read and our append, the whole block runs again on the new state, so the
 * loser of a race gets the answer the new state gives (e.g. 409). Whatever `decide` does besides
 * deciding runs again on such a retry: side effects in it must be idempotent by key (media storage of
 * signed content is keyed by the causation id, see completeDeviceDispense / markDeviceDispenseInError).
 */
import type { Decider } from '../../domain/shared/decider.js';
import {
  readerWith,
  readStreamsTogether,
  WrongExpectedRevisionError,
  type AppendResult,
  type ExpectedRevision,
  type RecordedEvent,
  type StreamReader,
} from '../../eventStore/eventStore.js';
import type { Caller, CommandDeps } from './commandContext.js';
import type { CachedAggregate } from './aggregateCache.js';
import {
  appendEvents,
  causationsOf,
  foldAggregate,
  loadAggregate,
  retryOnConflict,
  toEventsToAppend,
  type DomainEvent,
  type LoadedAggregate,
} from './eventStream.js';
import type { CommandResult } from './result.js';

/** The stream a command writes, and how to fold it into the decider's state. */
export type CommandStream<State, Event extends DomainEvent> = {
  streamName: string;
  decider: Pick<Decider<State, never, Event>, 'evolve' | 'initialState'>;
  parse: (event: RecordedEvent) => Event;
  /** Other streams `decide` reads: read with this one in one round trip where the store can. */
  alsoRead?: readonly string[];
  /**
   * This stream and those of `alsoRead` are new in almost every call: decide on them as empty first,
   * without reading (the attempt counts only if it appends to each of them against 'no_stream', in
   * one transaction: with `commit` only).
   */
  usuallyNew?: boolean;
};

/** Events for another stream, appended (with the revision the command read it at) before the command's own. */
export type OtherStreamAppend = { streamName: string; events: DomainEvent[]; expectedRevision: ExpectedRevision };

/** What `decide` returns: the events for the command's stream, or those and appends to other streams first. */
export type Decision<Event> = Event[] | { events: Event[]; appendFirst: OtherStreamAppend[] };

export type HandleCommandOptions = {
  /**
   * A job re-run after a crash must not write twice: when this caller's causation id already wrote to
   * the stream, answer with that write. Off where the causation id is new on every call (sync requests,
   * system runs), which keeps their answer the one the state gives.
   */
  skipIfAlreadyHandled?: boolean;
};

export type HandledCommand<Event> = CommandResult & {
  /** The events appended to the command's stream (none when nothing changed or already handled). */
  events: Event[];
};

/** A cached attempt's answer when the command must run again on the stream as read. */
const REREAD = Symbol('reread');

export async function handleCommand<State, Event extends DomainEvent>(
  deps: Pick<CommandDeps, 'eventStore' | 'clock' | 'commit' | 'aggregates'>,
  stream: CommandStream<State, Event>,
  caller: Caller<string | null>,
  /** `reader` serves the streams of `alsoRead` as read with the command's own (the store for any other). */
  decide: (state: State, now: Date, reader: StreamReader) => Decision<Event> | Promise<Decision<Event>>,
  { skipIfAlreadyHandled = true }: HandleCommandOptions = {},
): Promise<HandledCommand<Event>> {
  const cache = deps.aggregates;
  const { streamName, decider } = stream;
  // Only the first attempt may start from the cache: a retry (the stream moved) reads the stream.
  let cacheable = cache !== undefined && !stream.alsoRead?.length;

  /**
   * Decides on `aggregate` and appends. On a proposed one (cached, or assumed new), REREAD when the
   * answer must come from the stream as read.
   */
  async function attempt(
    aggregate: CachedAggregate<State>,
    reader: StreamReader,
    proposal: 'cached' | 'assumedNew' | null,
  ): Promise<HandledCommand<Event> | typeof REREAD> {
    const proposed = proposal !== null;
    // The other streams an assumed-new attempt took as empty.
    const assumedEmpty = proposal === 'assumedNew' ? (stream.alsoRead ?? []) : [];
    const handled = skipIfAlreadyHandled ? aggregate.causations.get(caller.causationId) : undefined;
    if (handled !== undefined) return { position: handled, events: [] };

    const { state, revision } = aggregate;
    const now = deps.clock();
    let decision: Decision<Event>;
    try {
      decision = await decide(state, now, reader);
    } catch (error) {
      // A refusal is given only on the stream as read: the proposed state may be behind another process.
      if (proposed) return REREAD;
      throw error;
    }
    const { events, appendFirst } = Array.isArray(decision) ? { events: decision, appendFirst: [] } : decision;
    if (proposed && events.length === 0) return REREAD;
    // Only an append against 'no_stream' proves a stream taken as empty was empty.
    const guarded = (name: string) => appendFirst.some((o) => o.streamName === name && o.expectedRevision === 'no_stream' && o.events.length > 0);
    if (!assumedEmpty.every(guarded)) return REREAD;
    const after = events.reduce(decider.evolve, state);
    const remember = (appended: AppendResult) =>
      cache?.set(streamName, decider, {
        state: after,
        revision: appended.nextExpectedRevision,
        causations: new Map(aggregate.causations).set(caller.causationId, appended.position),
      });
    try {
      if (deps.commit) {
        // One transaction for every append and what commits with them (inline read models, the job).
        const others = appendFirst.filter((other) => other.events.length > 0);
        const own = events.length ? [{ streamName, events: toEventsToAppend(events, caller, now), expectedRevision: revision, state: after }] : [];
        if (others.length + own.length === 0) return { position: null, events };
        const results = await deps.commit([...others.map((o) => ({ ...o, events: toEventsToAppend(o.events, caller, now) })), ...own]);
        if (!own.length) return { position: null, events };
        remember(results[results.length - 1]!);
        return { position: results[results.length - 1]!.position, events };
      }
      for (const other of appendFirst)
        if (other.events.length) await appendEvents(deps.eventStore, other.streamName, other.events, other.expectedRevision, caller, now);
      if (events.length === 0) return { position: null, events };
      const appended = await appendEvents(deps.eventStore, streamName, events, revision, caller, now);
      remember(appended);
      return { position: appended.position, events };
    } catch (error) {
      // Lost a race, or the outcome is unknown: whatever this process holds of the stream may be behind.
      cache?.delete(streamName);
      if (proposal === 'cached' && error instanceof WrongExpectedRevisionError) cache?.noteReread();
      throw error;
    }
  }

  // Only where all of a command's appends commit together: one at a time, the first could land
  // before the second finds its stream not new.
  if (stream.usuallyNew && deps.commit) {
    const assumedEmpty = readerWith(deps.eventStore, new Map((stream.alsoRead ?? []).map((name) => [name, []])));
    const empty: CachedAggregate<State> = { state: decider.initialState(), revision: 'no_stream', causations: new Map() };
    try {
      const outcome = await attempt(empty, assumedEmpty, 'assumedNew');
      if (outcome !== REREAD) return outcome;
    } catch (error) {
      // Not new after all (or a job run again): decide on the streams as read, below.
      if (!(error instanceof WrongExpectedRevisionError)) throw error;
    }
  }

  return retryOnConflict(async () => {
    const cached = cacheable ? cache!.get<State>(streamName, decider) : undefined;
    cacheable = false;
    if (cached) {
      const outcome = await attempt(cached, deps.eventStore, 'cached');
      if (outcome !== REREAD) return outcome;
      cache!.noteReread();
    }
    let reader: StreamReader = deps.eventStore;
    let loaded: LoadedAggregate<State>;
    if (stream.alsoRead?.length) {
      const together = await readStreamsTogether(deps.eventStore, [streamName, ...stream.alsoRead]);
      reader = together.reader;
      loaded = foldAggregate(together.events.get(streamName) ?? [], decider, stream.parse);
    } else loaded = await loadAggregate(deps.eventStore, streamName, decider, stream.parse);
    const aggregate: CachedAggregate<State> = { state: loaded.state, revision: loaded.revision, causations: causationsOf(loaded.events) };
    cache?.set(streamName, decider, aggregate);
    const outcome = await attempt(aggregate, reader, null);
    // Not reachable: only a proposed attempt (cached, assumed new) answers REREAD.
    if (outcome === REREAD) throw new Error('a command on the stream as read asked to be re-read');
    return outcome;
  });
}
