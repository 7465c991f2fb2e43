/**
 * The operator's view of and actions on dead letters (docs/projections-and-poison-events.md), shared by
 * the admin API and `cli projections poison`. Errors as ЕСОЗ errors: an unknown id is 404, an action the
 * letter's status does not allow is 409.
 */
import { z } from 'zod';
import { conflict, notFound } from '../domain/shared/esozError.js';
import { DEAD_LETTER_STATUSES, DeadLetterNotFoundError, DeadLetterStateError, type DeadLetter, type DeadLetters } from '../projections/deadLetters.js';
import { PROJECTION_NAMES } from '../projections/registry.js';
import type { Degradation } from '../observability/degradations.js';

export const poisonListQuerySchema = z.object({
  projection: z.enum(PROJECTION_NAMES).optional(),
  status: z.enum(DEAD_LETTER_STATUSES).optional(),
});

export const listPoisonEvents = (deadLetters: DeadLetters, query: z.infer<typeof poisonListQuerySchema>) => deadLetters.list(query);

/**
 * retry: a halted projection tries the event again at once (and goes on if it applies); a parked
 * event is behind its projection, so it is tried again, in order, by the projection's next rebuild.
 * skip: never applied; a halted projection moves past it.
 */
export async function actOnPoisonEvent(deadLetters: DeadLetters, id: string, action: 'retry' | 'skip'): Promise<DeadLetter> {
  try {
    return action === 'retry' ? await deadLetters.retry(id) : await deadLetters.skip(id);
  } catch (error) {
    if (error instanceof DeadLetterNotFoundError) throw notFound(`Dead letter ${id} not found`);
    if (error instanceof DeadLetterStateError) throw conflict(error.message);
    throw error;
  }
}

/**
 * Readiness entries (cluster-wide: read from the table, not from this process's runners): each
 * projection halted at an event, and each projection with parked events. Ids only, no error texts.
 */
export async function poisonDegradations(deadLetters: DeadLetters): Promise<Degradation[]> {
  const [halted, counts] = await Promise.all([deadLetters.list({ status: 'halted' }), deadLetters.counts()]);
  return [
    ...halted.map((letter) => ({
      part: `projection ${letter.projection}`,
      reason: `halted at event ${letter.event_id} (dead letter ${letter.id}): retry or skip it (GET /api/admin/projections/poison)`,
    })),
    ...counts
      .filter((c) => c.status === 'parked')
      .map((c) => ({ part: `projection ${c.projection}`, reason: `${c.count} event(s) parked (ON_POISON_EVENT=park): the read model lacks them` })),
  ];
}
