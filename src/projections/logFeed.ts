/**
 * One reader of the global log for every live projection of a process: each page is read once and
 * handed to every subscriber whose position it passes (all at the same time), instead of one reader
 * per projection each reading the same pages. The reader follows the slowest subscriber; one that
 * joins behind it restarts the reader from there (the others skip what they have seen). A page is
 * read again only after a full page (the store's subscription loop) or after a handler failed: then
 * that subscriber alone gets the events again, after the loop's back-off.
 */
import type { EventStore, Position, RecordedEvent, SubscribeOptions, Subscription } from '../eventStore/eventStore.js';

export type LogFeed = Pick<EventStore, 'subscribe'>;

/** A handler failed: already reported to its own subscriber, the store's loop only has to retry. */
class SubscriberFailed extends Error {}

type Subscriber = { position: Position | null; options: SubscribeOptions; running: Promise<void> };

export function createLogFeed(store: EventStore): LogFeed {
  const subscribers = new Set<Subscriber>();
  let reader: Subscription | null = null;
  /** Where the reader stands: the last position every subscriber has been offered. */
  let readerAt: Position | null = null;
  let changes = Promise.resolve();

  const isBefore = (a: Position | null, b: Position | null) => (a === null ? b !== null : b !== null && store.comparePositions(a, b) < 0);

  async function fanOut(events: RecordedEvent[]) {
    const failures: unknown[] = [];
    await Promise.all(
      [...subscribers].map(async (subscriber) => {
        const after = subscriber.position;
        const theirs = after === null ? events : events.filter((e) => store.comparePositions(e.position, after) > 0);
        if (theirs.length === 0) return;
        const handled = subscriber.options.onEvents(theirs);
        subscriber.running = handled.then(
          () => undefined,
          () => undefined,
        );
        try {
          await handled;
          subscriber.position = theirs[theirs.length - 1]!.position;
        } catch (error) {
          failures.push(error);
          subscriber.options.onError?.(error);
        }
      }),
    );
    if (failures.length > 0) throw new SubscriberFailed('a projection failed a batch; it is offered again');
    readerAt = events[events.length - 1]!.position;
    // One that joined while this page was being handed out did not get it: read again from it.
    if ([...subscribers].some((s) => isBefore(s.position, readerAt))) void adjust();
  }

  /** (Re)starts the reader where the slowest subscriber stands, or stops it when nobody listens. */
  function adjust(): Promise<void> {
    changes = changes.then(async () => {
      if (subscribers.size === 0) {
        const stopping = reader;
        reader = null;
        await stopping?.stop();
        return;
      }
      const slowest = [...subscribers].reduce<Position | null>((min, s) => (isBefore(s.position, min) ? s.position : min), [...subscribers][0]!.position);
      if (reader && !isBefore(slowest, readerAt)) return;
      const stopping = reader;
      reader = null;
      await stopping?.stop();
      readerAt = slowest;
      reader = store.subscribe({
        after: slowest,
        batchSize: Math.max(...[...subscribers].map((s) => s.options.batchSize ?? 500)),
        onEvents: fanOut,
        onError: (error) => {
          if (error instanceof SubscriberFailed) return;
          for (const subscriber of subscribers) subscriber.options.onError?.(error);
        },
        onRecovered: () => {
          for (const subscriber of subscribers) subscriber.options.onRecovered?.();
        },
      });
    });
    return changes;
  }

  return {
    subscribe(options) {
      const subscriber: Subscriber = { position: options.after, options, running: Promise.resolve() };
      subscribers.add(subscriber);
      void adjust();
      return {
        async stop() {
          subscribers.delete(subscriber);
          await subscriber.running;
          await adjust();
        },
      };
    },
  };
}
