/**
 * The command handler every command runs through (the shape of Emmett's handleCommandWithDecider):
 *
 *   retry on conflict → load the stream → already handled by this caller? → the command's checks and
 *   the decider → append with the revision it read.
 *
 * A command file keeps only its seed-ordered checks and its decider call (`decide` below). When another
 * writer appends between our read and our append, the whole block runs again on the new state, so the
 * loser of a race gets the answer the new state gives (e.g. 409). Whatever `decide` does besides
 * deciding runs again on such a retry: side effects in it must be idempotent by key (media storage of
 * signed content is keyed by the causation id, see completeDeviceDispense / markDeviceDispenseInError).
 */
import type { Decider } from '../../domain/shared/decider.js';
import { readStreamsTogether, type ExpectedRevision, type RecordedEvent, type StreamReader } from '../../eventStore/eventStore.js';
import type { Caller, CommandDeps } from './commandContext.js';
import {
  alreadyHandled,
  appendEvents,
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

export async function handleCommand<State, Event extends DomainEvent>(
  deps: Pick<CommandDeps, 'eventStore' | 'clock' | 'commit'>,
  stream: CommandStream<State, Event>,
  caller: Caller<string | null>,
  /** `reader` serves the streams of `alsoRead` as read with the command's own (the store for any other). */
  decide: (state: State, now: Date, reader: StreamReader) => Decision<Event> | Promise<Decision<Event>>,
  { skipIfAlreadyHandled = true }: HandleCommandOptions = {},
): Promise<HandledCommand<Event>> {
  return retryOnConflict(async () => {
    let reader: StreamReader = deps.eventStore;
    let loaded: LoadedAggregate<State>;
    if (stream.alsoRead?.length) {
      const together = await readStreamsTogether(deps.eventStore, [stream.streamName, ...stream.alsoRead]);
      reader = together.reader;
      loaded = foldAggregate(together.events.get(stream.streamName) ?? [], stream.decider, stream.parse);
    } else loaded = await loadAggregate(deps.eventStore, stream.streamName, stream.decider, stream.parse);
    const { state, revision, events: recorded } = loaded;
    const handled = skipIfAlreadyHandled ? alreadyHandled(recorded, caller) : undefined;
    if (handled) return { position: handled.position, events: [] };

    const now = deps.clock();
    const decision = await decide(state, now, reader);
    const { events, appendFirst } = Array.isArray(decision) ? { events: decision, appendFirst: [] } : decision;
    if (deps.commit) {
      // One transaction for every append and what commits with them (inline read models, the job).
      const others = appendFirst.filter((other) => other.events.length > 0);
      const own = events.length
        ? [
            {
              streamName: stream.streamName,
              events: toEventsToAppend(events, caller, now),
              expectedRevision: revision,
              state: events.reduce(stream.decider.evolve, state),
            },
          ]
        : [];
      if (others.length + own.length === 0) return { position: null, events };
      const results = await deps.commit([...others.map((o) => ({ ...o, events: toEventsToAppend(o.events, caller, now) })), ...own]);
      return { position: own.length ? results[results.length - 1]!.position : null, events };
    }
    for (const other of appendFirst)
      if (other.events.length) await appendEvents(deps.eventStore, other.streamName, other.events, other.expectedRevision, caller, now);
    if (events.length === 0) return { position: null, events };
    const appended = await appendEvents(deps.eventStore, stream.streamName, events, revision, caller, now);
    return { position: appended.position, events };
  });
}
