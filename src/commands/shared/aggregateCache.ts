/**
 * The aggregates this process last loaded or wrote, so a command on a stream it has just seen (a Stop
 * after the Create that made the dispense) skips reading the stream and re-parsing its events.
 *
 * Safe across processes because a cached aggregate only ever *proposes*: the command handler appends
 * with the cached revision, so if anyone else wrote the stream since, the append fails and the command
 * runs again on the stream as read from the store. A command the cached state would refuse (or leave
 * unchanged) is also run again on the stream as read, so no answer is ever given from a stale state.
 */
import type { ExpectedRevision, Position } from '../../eventStore/eventStore.js';

export type CachedAggregate<State> = {
  state: State;
  revision: ExpectedRevision;
  /** Which causation ids wrote to the stream, and where their last event is (`alreadyHandled`). */
  causations: ReadonlyMap<string, Position>;
};

type Entry = CachedAggregate<unknown> & { owner: object };

export type AggregateCache = {
  /** The aggregate of `streamName` as folded by `owner` (the decider), if this process has it. */
  get<State>(streamName: string, owner: object): CachedAggregate<State> | undefined;
  set<State>(streamName: string, owner: object, aggregate: CachedAggregate<State>): void;
  delete(streamName: string): void;
  /** A command started from the cache had to run again on the stream as read (another process wrote it, or a refusal). */
  noteReread(): void;
  readonly size: number;
  /** Since start: lookups that found the stream, those that did not, and cached attempts run again. */
  readonly counts: Readonly<{ hits: number; misses: number; rereads: number }>;
};

/** A least-recently-used map of at most `capacity` streams; 0 keeps nothing. */
export function createAggregateCache(capacity: number): AggregateCache {
  const entries = new Map<string, Entry>();
  const counts = { hits: 0, misses: 0, rereads: 0 };
  return {
    get<State>(streamName: string, owner: object) {
      const entry = entries.get(streamName);
      // Another decider's fold of the same stream is not this one's state.
      if (!entry || entry.owner !== owner) {
        counts.misses += 1;
        return undefined;
      }
      counts.hits += 1;
      entries.delete(streamName);
      entries.set(streamName, entry);
      return entry as CachedAggregate<State>;
    },
    set(streamName, owner, aggregate) {
      if (capacity === 0) return;
      // A slow read finishing after a newer write must not put the older state back.
      const held = entries.get(streamName);
      if (held?.owner === owner && isBehind(aggregate.revision, held.revision)) return;
      entries.delete(streamName);
      entries.set(streamName, { ...aggregate, owner });
      if (entries.size > capacity) entries.delete(entries.keys().next().value!);
    },
    delete(streamName) {
      entries.delete(streamName);
    },
    noteReread() {
      counts.rereads += 1;
    },
    get size() {
      return entries.size;
    },
    counts,
  };
}

const isBehind = (a: ExpectedRevision, b: ExpectedRevision) => typeof b === 'bigint' && (a === 'no_stream' || (typeof a === 'bigint' && a < b));
