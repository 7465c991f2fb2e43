/**
 * EventStoreDB event store (@eventstore/db-client 6.2.1). ESDB orders $all itself, so there is no gap
 * problem here: positions are the server's `{commit, prepare}` pair, kept whole as "<commit>:<prepare>"
 * because events of one append may share a commit position. System events ($-types, $-streams) are
 * never returned. Every read is paged with maxCount (unbounded reads run the client out of memory).
 */
import {
  ANY,
  BACKWARDS,
  CancelledError,
  DeadlineExceededError,
  END,
  EventStoreDBClient,
  FORWARDS,
  NO_STREAM,
  START,
  StreamNotFoundError,
  UnavailableError,
  WrongExpectedVersionError,
  excludeSystemEvents,
  jsonEvent,
  type AllStreamResolvedEvent,
  type AllStreamSubscription,
  type AppendExpectedRevision,
  type Direction,
  type Position as EsdbPosition,
  type ReadPosition,
} from '@eventstore/db-client';
import {
  WrongExpectedRevisionError,
  type AppendResult,
  type EventMetadata,
  type EventStore,
  type EventToAppend,
  type ExpectedRevision,
  type JsonObject,
  type JsonValue,
  type Position,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type SubscribeOptions,
  type Subscription,
} from './eventStore.js';
import { chainAppend } from './hashChain.js';
import { fromStoredMetadata, toStoredMetadata } from './storedMetadata.js';

export type EventStoreDbLog = (level: 'info' | 'warn' | 'error', message: string, detail?: unknown) => void;
export type EventStoreDbOptions = {
  /** Read page size and default subscription batch size. */
  batchSize?: number;
  onLog?: EventStoreDbLog;
};

const DEFAULT_PAGE = 500;
const HEAD_FIRST_PAGE = 32;
/**
 * countAfter stops here: it is a lag gauge read on every health/status call, and scanning a long $all
 * just to report "very far behind" is waste (it answers "at least this many"). A caught-up checkpoint
 * costs one short backwards read of the head and no forward scan at all.
 */
export const COUNT_AFTER_CAP = 10_000;
/** commit/prepare 2^64−1: what servers before 22.6 send on stream reads for "position unknown". */
const UNKNOWN_POSITION_VALUE = 18446744073709551615n;

/** Whether a stream read's position is missing or the "unknown" marker (never a real $all position). */
export const isUnknownEsdbPosition = (position: EsdbPosition | undefined): position is undefined =>
  position === undefined || position.commit === UNKNOWN_POSITION_VALUE || position.prepare === UNKNOWN_POSITION_VALUE;
/** A subscription batch is flushed when no further event arrived within this time. */
const IDLE_FLUSH_MS = 20;
const BACKOFF_START_MS = 100;
const BACKOFF_FACTOR = 1.5;
const BACKOFF_MAX_MS = 5_000;
/** unsubscribe() awaits the gRPC call's creation, which can hang while the server is down. */
const UNSUBSCRIBE_TIMEOUT_MS = 1_000;

// ---------------------------------------------------------------- positions (pure, exported for tests)

export const encodeEsdbPosition = ({ commit, prepare }: EsdbPosition): Position => `${commit}:${prepare}`;

const MAX_UINT64 = 2n ** 64n - 1n;

export function decodeEsdbPosition(position: Position): EsdbPosition {
  // commit and prepare are unsigned 64-bit integers on the wire.
  const match = /^(\d{1,20}):(\d{1,20})$/.exec(position);
  const commit = match ? BigInt(match[1]!) : -1n;
  const prepare = match ? BigInt(match[2]!) : -1n;
  if (commit < 0n || commit > MAX_UINT64 || prepare < 0n || prepare > MAX_UINT64) throw new Error(`Not an EventStoreDB position: ${position}`);
  return { commit, prepare };
}

export function compareEsdbPositions(a: EsdbPosition, b: EsdbPosition): number {
  if (a.commit !== b.commit) return a.commit < b.commit ? -1 : 1;
  if (a.prepare !== b.prepare) return a.prepare < b.prepare ? -1 : 1;
  return 0;
}

export const compareEncodedPositions = (a: Position, b: Position): number => compareEsdbPositions(decodeEsdbPosition(a), decodeEsdbPosition(b));

// ---------------------------------------------------------------- mapping

type ClientRecordedEvent = NonNullable<AllStreamResolvedEvent['event']>;
type StreamRecordedEvent = { streamId: string; revision: bigint; type: string; data: unknown; metadata: unknown; position?: EsdbPosition };

const isSystemEvent = (event: { type: string; streamId: string }): boolean => event.type.startsWith('$') || event.streamId.startsWith('$');

const isJsonObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);

/** Binary (non-JSON content type) payloads written by other tools: decode if they are JSON after all. */
function fromBytes(value: unknown): unknown {
  if (!(value instanceof Uint8Array)) return value;
  const text = Buffer.from(value).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

const toData = (value: unknown): JsonObject => {
  const decoded = fromBytes(value);
  return isJsonObject(decoded) ? decoded : { value: decoded as JsonValue };
};

/** Not validated: foreign events keep whatever metadata they carry (or none). */
const toMetadata = (value: unknown): EventMetadata => fromStoredMetadata(fromBytes(value));

/** The hash-chain link an appended event carries in its metadata (`prev_hash`, `hash`), if any. */
function chainLinkOf(metadata: unknown): { prevHash: string; hash: string } | null {
  const value = fromBytes(metadata);
  if (!isJsonObject(value)) return null;
  const { prev_hash: prevHash, hash } = value;
  return typeof prevHash === 'string' && typeof hash === 'string' ? { prevHash, hash } : null;
}

function toRecordedEvent(event: StreamRecordedEvent, position: EsdbPosition): RecordedEvent {
  return {
    type: event.type,
    data: toData(event.data),
    metadata: toMetadata(event.metadata),
    streamName: event.streamId,
    revision: event.revision,
    position: encodeEsdbPosition(position),
    ...chainLinkOf(event.metadata),
  };
}

function toClientExpectedRevision(expected: ExpectedRevision): AppendExpectedRevision {
  if (expected === 'any') return ANY;
  if (expected === 'no_stream') return NO_STREAM;
  return expected;
}

function actualRevisionOf(error: WrongExpectedVersionError): bigint | 'no_stream' | 'unknown' {
  const actual: unknown = error.actualVersion;
  if (typeof actual === 'bigint') return actual >= 0n ? actual : 'no_stream'; // old servers report -1
  return actual === NO_STREAM ? 'no_stream' : 'unknown';
}

/** The stored metadata plus the event's hash-chain link (EventStoreDB has no column for it). */
const toEventData = (event: EventToAppend, link: { prevHash: string; hash: string }) =>
  jsonEvent({
    id: event.metadata.eventId,
    type: event.type,
    data: event.data,
    metadata: { ...toStoredMetadata(event.metadata), prev_hash: link.prevHash, hash: link.hash },
  });

const isTransient = (error: unknown): boolean => error instanceof CancelledError || error instanceof UnavailableError || error instanceof DeadlineExceededError;

const backoffMs = (failures: number): number => Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * BACKOFF_FACTOR ** Math.max(0, failures - 1));

const noop = (): void => undefined;

// ---------------------------------------------------------------- store

export async function createEventStoreDbEventStore(connectionString: string, options: EventStoreDbOptions = {}): Promise<EventStore> {
  const client = EventStoreDBClient.connectionString(connectionString);
  const pageSize = Math.max(2, options.batchSize ?? DEFAULT_PAGE);
  const log: EventStoreDbLog = options.onLog ?? noop;
  const subscriptions = new Set<Subscription>();

  /** One bounded $all page, gathered before use so nothing stays open while callers work. */
  async function readAllPage(fromPosition: ReadPosition, direction: Direction, maxCount: number): Promise<AllStreamResolvedEvent[]> {
    const page: AllStreamResolvedEvent[] = [];
    for await (const resolved of client.readAll({ fromPosition, direction, maxCount, resolveLinkTos: false })) page.push(resolved);
    return page;
  }

  /**
   * Walks $all one bounded page at a time, handing each event strictly beyond `from` (in walk order) to
   * `visit` until it returns false or the log ends. The client's fromPosition may be inclusive, so each
   * page asks for one extra event and drops what it has already seen.
   */
  async function scanAll(
    from: EsdbPosition | null,
    direction: Direction,
    firstPageSize: number,
    visit: (event: ClientRecordedEvent, position: EsdbPosition) => boolean,
  ): Promise<void> {
    const forwards = direction === FORWARDS;
    const beyond = (position: EsdbPosition, cursor: EsdbPosition) => {
      const order = compareEsdbPositions(position, cursor);
      return forwards ? order > 0 : order < 0;
    };
    let cursor = from;
    let size = firstPageSize;
    for (;;) {
      const requested = size + 1;
      const page = await readAllPage(cursor ?? (forwards ? START : END), direction, requested);
      const before = cursor;
      for (const resolved of page) {
        const event = resolved.event;
        if (!event) continue;
        if (cursor && !beyond(event.position, cursor)) continue;
        cursor = event.position;
        if (!visit(event, event.position)) return;
      }
      if (page.length < requested || cursor === before) return; // end of log (or no progress: never spin)
      size = Math.max(pageSize, firstPageSize);
    }
  }

  async function readAll({ after, maxCount }: ReadAllOptions): Promise<RecordedEvent[]> {
    const events: RecordedEvent[] = [];
    if (maxCount <= 0) return events;
    // Later pages use the full page size: they only happen when system events were filtered out.
    await scanAll(after ? decodeEsdbPosition(after) : null, FORWARDS, Math.min(pageSize, maxCount), (event, position) => {
      if (!isSystemEvent(event)) events.push(toRecordedEvent(event, position));
      return events.length < maxCount;
    });
    return events;
  }

  async function* readStream(
    streamName: string,
    { fromRevision = 0n, maxCount = Number.MAX_SAFE_INTEGER }: ReadStreamOptions = {},
  ): AsyncGenerator<RecordedEvent> {
    let next = fromRevision;
    let left = maxCount;
    // Servers before 22.6 give stream reads no (or an "unknown" 2^64−1) position. Such an event takes the
    // $all head read now: an upper bound of its real position (it is already written), so whoever waits
    // for it (a re-run job waiting for the read model) waits until the projection caught up to now —
    // never 30 s for a position no event will ever reach, never not at all.
    let headForUnknown: EsdbPosition | null = null;
    const positionOf = async (position: EsdbPosition | undefined): Promise<EsdbPosition> => {
      if (!isUnknownEsdbPosition(position)) return position;
      if (!headForUnknown) {
        const head = await headPosition();
        headForUnknown = head ? decodeEsdbPosition(head) : { commit: 0n, prepare: 0n };
      }
      return headForUnknown;
    };
    while (left > 0) {
      const size = Math.min(DEFAULT_PAGE, left);
      const page: RecordedEvent[] = [];
      try {
        for await (const resolved of client.readStream(streamName, { fromRevision: next, maxCount: size, direction: FORWARDS, resolveLinkTos: false })) {
          const event = resolved.event;
          // Typed optional (servers before 22.6 omit it or send 2^64−1); only $all positions serve as checkpoints.
          if (event) page.push(toRecordedEvent(event, await positionOf(event.position)));
        }
      } catch (error) {
        if (error instanceof StreamNotFoundError) return;
        throw error;
      }
      yield* page;
      if (page.length < size) return;
      left -= page.length;
      next = page[page.length - 1]!.revision + 1n;
    }
  }

  async function appendToStream(
    streamName: string,
    events: EventToAppend[],
    { expectedRevision }: { expectedRevision: ExpectedRevision },
  ): Promise<AppendResult> {
    if (events.length === 0) throw new Error('Nothing to append');
    let result;
    // The chain needs the stream's last hash: one backwards read of its last event. 'any' becomes the
    // revision read (an exact append), retried on a race, so the chain stays linear here too.
    for (let attempt = 1; ; attempt++) {
      const last = await lastEventOf(streamName);
      const expected: ExpectedRevision = expectedRevision === 'any' ? (last ? last.revision : 'no_stream') : expectedRevision;
      const first = last ? last.revision + 1n : 0n;
      const links = chainAppend(
        streamName,
        first,
        last?.hash ?? null,
        events.map((e) => ({ type: e.type, data: e.data, metadata: toStoredMetadata(e.metadata) })),
      );
      try {
        result = await client.appendToStream(
          streamName,
          events.map((e, i) => toEventData(e, links[i]!)),
          { expectedRevision: toClientExpectedRevision(expected) },
        );
        break;
      } catch (error) {
        if (error instanceof WrongExpectedVersionError) {
          if (expectedRevision === 'any' && attempt < 5) continue;
          throw new WrongExpectedRevisionError(streamName, expectedRevision, actualRevisionOf(error));
        }
        throw error;
      }
    }
    // Only reachable if throwOnAppendFailure were off; its reported revision is unreliable there.
    if (!result.success) throw new WrongExpectedRevisionError(streamName, expectedRevision, 'unknown');
    if (!result.position) throw new Error(`EventStoreDB returned no position for the append to ${streamName}`);
    return { nextExpectedRevision: result.nextExpectedRevision, position: encodeEsdbPosition(result.position) };
  }

  async function lastEventOf(streamName: string): Promise<{ revision: bigint; hash: string | null } | null> {
    try {
      for await (const resolved of client.readStream(streamName, { fromRevision: END, direction: BACKWARDS, maxCount: 1, resolveLinkTos: false }))
        if (resolved.event) return { revision: resolved.event.revision, hash: chainLinkOf(resolved.event.metadata)?.hash ?? null };
    } catch (error) {
      if (error instanceof StreamNotFoundError) return null;
      throw error;
    }
    return null;
  }

  async function headPosition(): Promise<Position | null> {
    let head: Position | null = null;
    await scanAll(null, BACKWARDS, HEAD_FIRST_PAGE, (event, position) => {
      if (isSystemEvent(event)) return true;
      head = encodeEsdbPosition(position);
      return false;
    });
    return head;
  }

  async function countAfter(after: Position | null): Promise<number> {
    if (after) {
      const head = await headPosition();
      if (head === null || compareEncodedPositions(after, head) >= 0) return 0; // caught up: no scan
    }
    let count = 0;
    await scanAll(after ? decodeEsdbPosition(after) : null, FORWARDS, pageSize, (event) => {
      if (!isSystemEvent(event)) count += 1;
      return count < COUNT_AFTER_CAP;
    });
    return count;
  }

  function subscribe(subscribeOptions: SubscribeOptions): Subscription {
    const running = runCatchUpSubscription(client, { ...subscribeOptions, batchSize: subscribeOptions.batchSize ?? pageSize }, log);
    const handle: Subscription = {
      async stop() {
        subscriptions.delete(handle);
        await running.stop();
      },
    };
    subscriptions.add(handle);
    return handle;
  }

  return {
    kind: 'eventstoredb',
    appendToStream,
    readStream,
    readAll,
    subscribe,
    headPosition,
    countAfter,
    comparePositions: compareEncodedPositions,
    async close() {
      await Promise.all([...subscriptions].map((subscription) => subscription.stop()));
      await client.dispose();
    },
  };
}

// ---------------------------------------------------------------- subscription

type Raced<T> = { kind: 'value'; value: T } | { kind: 'stop' } | { kind: 'idle' };

/** Lets waits end early on stop() without leaving listeners behind on a long-lived promise. */
function createStopper() {
  let stopped = false;
  const waiters = new Set<() => void>();
  return {
    get stopped() {
      return stopped;
    },
    stop() {
      stopped = true;
      for (const wake of [...waiters]) wake();
    },
    race<T>(promise: Promise<T>, idleMs?: number): Promise<Raced<T>> {
      return new Promise((resolve, reject) => {
        const finish = (outcome: Raced<T>) => {
          clearTimeout(timer);
          waiters.delete(onStop);
          resolve(outcome);
        };
        const onStop = () => finish({ kind: 'stop' });
        const timer = idleMs === undefined ? undefined : setTimeout(() => finish({ kind: 'idle' }), idleMs);
        if (stopped) return finish({ kind: 'stop' });
        waiters.add(onStop);
        promise.then(
          (value) => finish({ kind: 'value', value }),
          (error: unknown) => {
            clearTimeout(timer);
            waiters.delete(onStop);
            reject(error);
          },
        );
      });
    },
    sleep(ms: number): Promise<unknown> {
      return this.race(new Promise<never>(noop), ms);
    },
  };
}

async function closeSubscription(subscription: AllStreamSubscription, log: EventStoreDbLog): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([subscription.unsubscribe(), new Promise<void>((resolve) => (timer = setTimeout(resolve, UNSUBSCRIBE_TIMEOUT_MS)))]);
  } catch (error) {
    log('warn', 'EventStoreDB unsubscribe failed', error);
  } finally {
    clearTimeout(timer);
    subscription.destroy(); // unsubscribe cancels the gRPC call but does not end the readable
  }
}

/**
 * Catch-up subscription on $all. The client never resubscribes by itself, so this loop does: after an
 * error, an unexpected end, or a failing handler it reports, backs off and resubscribes from the last
 * position whose handler resolved (delivery is at-least-once; a failed batch comes again).
 */
function runCatchUpSubscription(
  client: EventStoreDBClient,
  { after, batchSize, onEvents, onError, onRecovered }: SubscribeOptions & { batchSize: number },
  log: EventStoreDbLog,
): Subscription {
  const stopper = createStopper();
  let handled: EsdbPosition | null = after ? decodeEsdbPosition(after) : null;
  let failures = 0;

  /** Pulls one event at a time (stream backpressure); the handler is awaited before the next pull. */
  async function consume(subscription: AllStreamSubscription): Promise<void> {
    const iterator = subscription[Symbol.asyncIterator]();
    let batch: RecordedEvent[] = [];
    let queued = handled; // last position taken into a batch: drops any replay of earlier events
    let pending: Promise<IteratorResult<AllStreamResolvedEvent>> | null = null;

    const flush = async () => {
      if (batch.length === 0) return;
      const events = batch;
      batch = [];
      await onEvents(events);
      handled = decodeEsdbPosition(events[events.length - 1]!.position);
      if (failures > 0) onRecovered?.();
      failures = 0;
    };

    while (!stopper.stopped) {
      if (!pending) {
        pending = iterator.next();
        pending.catch(noop); // observed below; this only silences the rejection if we stop first
      }
      const outcome = await stopper.race(pending, batch.length > 0 ? IDLE_FLUSH_MS : undefined);
      if (outcome.kind === 'stop') return;
      if (outcome.kind === 'idle') {
        await flush(); // the pull stays pending and is awaited again next round
        continue;
      }
      pending = null;
      if (outcome.value.done) {
        await flush();
        if (stopper.stopped) return;
        throw new Error('EventStoreDB subscription ended unexpectedly');
      }
      const event = outcome.value.value.event;
      if (!event || isSystemEvent(event)) continue;
      if (queued && compareEsdbPositions(event.position, queued) <= 0) continue;
      queued = event.position;
      batch.push(toRecordedEvent(event, event.position));
      if (batch.length >= batchSize) await flush();
    }
  }

  const reportError = (error: unknown) => {
    try {
      onError?.(error);
    } catch (callbackError) {
      log('error', 'Subscription onError callback threw', callbackError); // must not kill the retry loop
    }
  };

  const loop = (async () => {
    while (!stopper.stopped) {
      const subscription = client.subscribeToAll({ fromPosition: handled ?? START, filter: excludeSystemEvents(), resolveLinkTos: false });
      // Errors reach us through the iterator; this keeps a late 'error' after we let go from crashing the process.
      subscription.on('error', noop);
      let failed = false;
      try {
        await consume(subscription);
      } catch (error) {
        if (!stopper.stopped) {
          failed = true;
          failures += 1;
          log(isTransient(error) ? 'warn' : 'error', 'EventStoreDB subscription failed; resubscribing', error);
          reportError(error);
        } else {
          log('warn', 'EventStoreDB subscription failed while stopping', error);
        }
      } finally {
        await closeSubscription(subscription, log);
      }
      if (failed && !stopper.stopped) {
        await stopper.sleep(backoffMs(failures));
        if (!stopper.stopped) log('info', 'EventStoreDB subscription resubscribing', { from: handled ? encodeEsdbPosition(handled) : 'start' });
      }
    }
  })();

  return {
    async stop() {
      stopper.stop();
      await loop;
    },
  };
}
