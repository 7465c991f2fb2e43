/**
 * Puts a projection behind its dead letters, wherever it runs (the live runner, a rebuild, verify):
 * parked and skipped events are left out, and an event the projection cannot apply is recorded once
 * (projection, event, position, error) and logged once. With ON_POISON_EVENT=park the batch goes on
 * without it; with stop the events before it are applied and the PoisonEventError goes up, so the
 * runner halts exactly at it. A failure no event is named by (a data error of the database) is
 * narrowed down by applying the batch's events one at a time.
 */
import type { Logger } from '../logger.js';
import type { DeadLetters } from './deadLetters.js';
import { isTransient, PoisonEventError } from './poison.js';
import type { Projection } from './projection.js';
import type { RecordedEvent } from '../eventStore/eventStore.js';

export type PoisonPolicy = 'stop' | 'park';

export type GuardOptions = {
  deadLetters: DeadLetters;
  onPoison: PoisonPolicy;
  logger: Logger;
  /** False for a read-only pass (verify): poison goes up unrecorded. */
  record?: boolean;
  /** The name its dead letters are kept under (a shadow's are its live projection's). */
  name?: string;
};

export function withDeadLetters(inner: Projection, options: GuardOptions): Projection {
  const { deadLetters, onPoison, logger, record = true, name = inner.name } = options;
  const log = logger.child({ projection: name });
  const keep = (event: RecordedEvent) => !deadLetters.excluded(name).has(event.metadata.eventId);
  const mine = (event: RecordedEvent) => !inner.relevant || inner.relevant(event);

  const guarded: Projection = {
    ...inner,
    relevant: (event) => keep(event) && mine(event),

    async handle(events, checkpoint) {
      let rest = events.filter(keep);
      for (;;) {
        try {
          const wrote = await inner.handle(rest, checkpoint);
          const retried = deadLetters.retrying(name);
          if (retried.size > 0) {
            const applied = rest.filter((e) => retried.has(e.metadata.eventId)).map((e) => e.metadata.eventId);
            if (applied.length > 0) {
              await deadLetters.resolve(name, applied);
              log.info({ event_ids: applied }, 'retried event(s) applied; dead letter(s) resolved');
            }
          }
          return wrote;
        } catch (error) {
          let poison = error instanceof PoisonEventError ? error : null;
          if (!poison && !isTransient(error)) {
            const ours = rest.filter(mine);
            if (ours.length === 1) poison = new PoisonEventError(name, ours[0]!, error);
            else if (ours.length > 1) return oneByOne(rest, checkpoint);
          }
          if (!poison) throw error;
          if (!record) throw poison;
          const status = onPoison === 'park' ? 'parked' : 'halted';
          const { letter, first } = await deadLetters.record(name, poison.event, poison.reason, status);
          poison.letter = letter;
          poison.first = first;
          const about = { dead_letter_id: letter.id, event_id: letter.event_id, position: letter.position, stream: letter.stream_name, error: letter.error };
          if (first)
            log.error(
              about,
              status === 'parked'
                ? 'projection cannot apply an event: parked as a dead letter, going on without it (ON_POISON_EVENT=park)'
                : 'projection cannot apply an event: halted at it (ON_POISON_EVENT=stop); retry or skip it: cli projections poison list',
            );
          else log.warn({ ...about, attempts: letter.attempts }, `event still cannot be applied (${status})`);
          if (status === 'parked') {
            rest = rest.filter((e) => e !== poison!.event);
            continue;
          }
          // Halt right at it: the events before it are applied, with the checkpoint just before it.
          const before = events.slice(0, events.indexOf(poison.event));
          if (before.length > 0) await inner.handle(before.filter(keep), { from: checkpoint.from, to: before[before.length - 1]!.position });
          throw poison;
        }
      }
    },
  };

  /** Applies the batch an event at a time, each with its own checkpoint, so a failing event is named. */
  async function oneByOne(events: RecordedEvent[], checkpoint: Parameters<Projection['handle']>[1]): Promise<boolean> {
    let from = checkpoint.from;
    for (const event of events) {
      await guarded.handle([event], { from, to: event.position });
      from = event.position;
    }
    if (from !== checkpoint.to) await inner.handle([], { from, to: checkpoint.to });
    return true;
  }

  if (inner.shadow) {
    const shadow = inner.shadow.bind(inner);
    guarded.shadow = async (purpose) => {
      const opened = await shadow(purpose);
      return { ...opened, projection: withDeadLetters(opened.projection, { ...options, name }) };
    };
  }
  return guarded;
}
