/**
 * The command handler's aggregate cache, on every event store of the adapter table: two "processes"
 * are two command contexts with caches of their own on one store. A command on a stream its process
 * has just written does not read it; no answer ever comes from a stale cached state (another process's
 * write makes the cached append lose, and a refusal or no-op is checked on the stream as read). A
 * command on streams that are usually new (a Create) decides on them as empty first, guarded the same way.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { v4 as uuidv4 } from 'uuid';
import { createAggregateCache, type AggregateCache } from '../../src/commands/shared/aggregateCache.js';
import type { Caller, CommandCommit } from '../../src/commands/shared/commandContext.js';
import { handleCommand, type CommandStream } from '../../src/commands/shared/commandHandler.js';
import { conflict, EsozError } from '../../src/domain/shared/esozError.js';
import { readWholeStream, type EventStore, type RecordedEvent } from '../../src/eventStore/eventStore.js';
import type { PostgresEventStore } from '../../src/eventStore/postgresEventStore.js';
import { eventStoreAdapters } from '../support/storeCombinations.js';
import { uniqueStream } from '../support/events.js';

// A counter that must be opened first and counts up to a limit: enough to refuse, accept and no-op.
type CounterEvent = { type: 'Opened'; data: { limit: number } } | { type: 'Counted'; data: { by: string } };
type Counter = { limit: number; count: number } | null;
const evolve = (state: Counter, event: CounterEvent): Counter =>
  event.type === 'Opened' ? { limit: event.data.limit, count: 0 } : state && { ...state, count: state.count + 1 };
const counterDecider = { initialState: (): Counter => null, evolve };
const stream = (streamName: string): CommandStream<Counter, CounterEvent> => ({
  streamName,
  decider: counterDecider,
  parse: (event: RecordedEvent) => ({ type: event.type, data: event.data }) as CounterEvent,
});
const open = (state: Counter): CounterEvent[] => (state ? [] : [{ type: 'Opened', data: { limit: 1 } }]);
const count =
  (by: string) =>
  (state: Counter): CounterEvent[] => {
    if (!state) throw conflict('counter is not open');
    if (state.count >= state.limit) throw conflict('counter is full');
    return [{ type: 'Counted', data: { by } }];
  };

/**
 * One process: its own cache on the shared store, and the streams it read. `atomic`: its commands'
 * appends commit together (as the server's on PostgreSQL/PGlite) where the store can.
 */
function processOn(store: EventStore, cache: AggregateCache = createAggregateCache(100), atomic = false) {
  const reads: string[] = [];
  const eventStore = new Proxy(store, {
    get(target, key) {
      if (key === 'readStream')
        return (name: string, options?: Parameters<EventStore['readStream']>[1]) => {
          reads.push(name);
          return target.readStream(name, options);
        };
      if (key === 'readStreams' && target.readStreams)
        return (names: readonly string[]) => {
          reads.push(...names);
          return target.readStreams!(names);
        };
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const together = (store as Partial<PostgresEventStore>).appendAtomically?.bind(store);
  const commit: CommandCommit | undefined = atomic && together ? (appends) => together(appends) : undefined;
  const deps = { eventStore, clock: () => new Date(), aggregates: cache, ...(commit ? { commit } : {}) };
  const caller = (causationId = uuidv4()): Caller => ({ userId: 'user-1', legalEntityId: 'legal-entity-1', correlationId: uuidv4(), causationId });
  return {
    reads,
    cache,
    run: (name: string, decide: (state: Counter) => CounterEvent[], causationId?: string) =>
      handleCommand(deps, stream(name), caller(causationId), (state) => decide(state)),
    /**
     * Opens counter `name` and claims `registry` for it (a Create and its device request): refused when
     * the registry is claimed already; `guard: false` leaves the registry unwritten (read, not appended to).
     */
    claim: (name: string, registry: string, { causationId, guard = true }: { causationId?: string; guard?: boolean } = {}) =>
      handleCommand(deps, { ...stream(name), alsoRead: [registry], usuallyNew: true }, caller(causationId), async (state, _now, reader) => {
        const claims = await readWholeStream(reader, registry);
        if (claims.length > 0) throw conflict('registry is claimed');
        const events = open(state);
        const claimed = { type: 'Counted', data: { by: name } };
        return { events, appendFirst: guard ? [{ streamName: registry, events: [claimed], expectedRevision: 'no_stream' as const }] : [] };
      }),
  };
}

const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => 'accepted',
    (error: unknown) => (error instanceof EsozError ? error.message : `unexpected ${String(error)}`),
  );

describe.each(eventStoreAdapters().map((adapter) => [adapter.name, adapter] as const))('aggregate cache on %s', (_name, adapter) => {
  let store: EventStore;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ store, close } = await adapter.open());
  });
  afterAll(async () => close?.());

  const typesOf = async (name: string) => (await readWholeStream(store, name)).map((e) => `${e.revision}:${e.type}`);

  it('Given a stream this process just wrote, When it runs another command on it, Then it appends without reading the stream', async () => {
    const a = processOn(store);
    const name = uniqueStream('counter');
    await a.run(name, open);
    expect(a.reads).toEqual([name]);
    await a.run(name, count('a'));
    expect(a.reads).toEqual([name]);
    expect(await typesOf(name)).toEqual(['0:Opened', '1:Counted']);
    expect(a.cache.counts).toEqual({ hits: 1, misses: 1, rereads: 0 });
  });

  it('Given another process wrote since, When this one runs a command from its cache, Then its append loses and the answer is the one the stream as read gives', async () => {
    const [a, b] = [processOn(store), processOn(store)];
    const name = uniqueStream('counter');
    await a.run(name, open); // a holds { count: 0 }
    await b.run(name, count('b')); // the counter is full now
    expect(await refusal(a.run(name, count('a')))).toBe('counter is full');
    expect(a.reads).toEqual([name, name]);
    expect(a.cache.counts.rereads).toBe(1); // the lost race
    expect(await typesOf(name)).toEqual(['0:Opened', '1:Counted']);
    // And the cache now holds the stream as read: the next refusal needs one more read, nothing is written.
    expect(await refusal(a.run(name, count('a')))).toBe('counter is full');
    expect(await typesOf(name)).toEqual(['0:Opened', '1:Counted']);
  });

  it('Given a cached state that refuses a command, When another process has made it acceptable, Then it is accepted (a refusal is never given from the cache)', async () => {
    const [a, b] = [processOn(store), processOn(store)];
    const name = uniqueStream('counter');
    expect(await refusal(a.run(name, count('a')))).toBe('counter is not open'); // a caches "no stream"
    await b.run(name, open);
    expect(await refusal(a.run(name, count('a')))).toBe('accepted');
    expect(a.cache.counts).toEqual({ hits: 1, misses: 1, rereads: 1 }); // the cached refusal, checked on the stream as read
    expect(await typesOf(name)).toEqual(['0:Opened', '1:Counted']);
  });

  it('Given a job that already wrote, When it runs again in this process or another, Then nothing is written and the answer is its first write', async () => {
    const [a, b] = [processOn(store), processOn(store)];
    const name = uniqueStream('counter');
    await a.run(name, open);
    const job = uuidv4();
    const first = await a.run(name, count('a'), job);
    const readsBefore = a.reads.length;
    expect((await a.run(name, count('a'), job)).position).toBe(first.position);
    expect(a.reads.length).toBe(readsBefore);
    expect((await b.run(name, count('b'), job)).position).toBe(first.position);
    expect(await typesOf(name)).toEqual(['0:Opened', '1:Counted']);
  });

  // Where a command's appends commit together (PostgreSQL/PGlite); one at a time (EventStoreDB) it reads.
  const atomic = () => 'appendAtomically' in store;
  const atomicProcess = () => processOn(store, createAggregateCache(100), true);

  it('Given new streams, When a command marked usuallyNew runs, Then it appends to both without reading either', async () => {
    const a = atomicProcess();
    const [name, registry] = [uniqueStream('counter'), uniqueStream('registry')];
    await a.claim(name, registry);
    expect(a.reads).toEqual(atomic() ? [] : [name, registry]);
    expect(await typesOf(name)).toEqual(['0:Opened']);
    expect(await typesOf(registry)).toEqual(['0:Counted']);
  });

  it('Given appends that commit one at a time, When a usuallyNew command runs, Then it reads its streams first', async () => {
    const a = processOn(store);
    const [name, registry] = [uniqueStream('counter'), uniqueStream('registry')];
    await a.claim(name, registry);
    expect(a.reads).toEqual([name, registry]);
    expect(await typesOf(registry)).toEqual(['0:Counted']);
  });

  it('Given the other stream exists, When a usuallyNew command runs, Then its append against "no_stream" loses and the answer is the one the streams as read give', async () => {
    const [a, b] = [atomicProcess(), atomicProcess()];
    const [first, second, registry] = [uniqueStream('counter'), uniqueStream('counter'), uniqueStream('registry')];
    await b.claim(first, registry);
    expect(await refusal(a.claim(second, registry))).toBe('registry is claimed');
    expect(a.reads).toEqual([second, registry]);
    expect(await typesOf(second)).toEqual([]);
    expect(await typesOf(registry)).toEqual(['0:Counted']);
  });

  it('Given its own stream exists, When a usuallyNew command runs, Then nothing it decided on the empty streams is written and it is decided on the streams as read', async () => {
    const a = atomicProcess();
    const [name, registry] = [uniqueStream('counter'), uniqueStream('registry')];
    await a.run(name, open);
    await a.claim(name, registry);
    expect(await typesOf(name)).toEqual(['0:Opened']);
    expect(await typesOf(registry)).toEqual(['0:Counted']);
    expect(a.reads).toEqual([name, name, registry]);
  });

  it('Given a usuallyNew command that does not append to a stream it took as empty, When it runs, Then it reads the streams first (nothing guards that one)', async () => {
    const a = atomicProcess();
    const [name, registry] = [uniqueStream('counter'), uniqueStream('registry')];
    await a.claim(name, registry, { guard: false });
    expect(a.reads).toEqual([name, registry]);
    expect(await typesOf(name)).toEqual(['0:Opened']);
    expect(await typesOf(registry)).toEqual([]);
  });

  it('Given a usuallyNew job that already wrote, When it runs again in another process, Then nothing is written and the answer is its first write', async () => {
    const [a, b] = [atomicProcess(), atomicProcess()];
    const [name, registry] = [uniqueStream('counter'), uniqueStream('registry')];
    const job = uuidv4();
    const first = await a.claim(name, registry, { causationId: job });
    expect((await b.claim(name, registry, { causationId: job })).position).toBe(first.position);
    expect(await typesOf(name)).toEqual(['0:Opened']);
    expect(await typesOf(registry)).toEqual(['0:Counted']);
  });

  it('Given a cache of size 0, When commands run, Then each reads its stream', async () => {
    const a = processOn(store, createAggregateCache(0));
    const name = uniqueStream('counter');
    await a.run(name, open);
    await a.run(name, count('a'));
    expect(a.reads).toEqual([name, name]);
  });
});

describe('aggregate cache bounds', () => {
  const owner = counterDecider;
  const entry = (revision: bigint) => ({ state: null, revision, causations: new Map<string, string>() });

  it('keeps the most recently used streams up to its capacity', () => {
    const cache = createAggregateCache(2);
    cache.set('s1', owner, entry(0n));
    cache.set('s2', owner, entry(0n));
    expect(cache.get('s1', owner)).toBeDefined(); // s1 used: s2 is the oldest now
    cache.set('s3', owner, entry(0n));
    expect([cache.get('s1', owner), cache.get('s2', owner), cache.get('s3', owner)].map(Boolean)).toEqual([true, false, true]);
    expect(cache.size).toBe(2);
  });

  it('never puts an older state over a newer one, and answers only the decider that folded it', () => {
    const cache = createAggregateCache(10);
    cache.set('s', owner, entry(3n));
    cache.set('s', owner, entry(2n));
    cache.set('s', owner, { ...entry(0n), revision: 'no_stream' });
    expect(cache.get('s', owner)?.revision).toBe(3n);
    expect(cache.get('s', {})).toBeUndefined();
  });
});
