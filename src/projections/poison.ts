/**
 * A poison event: one a projection cannot apply (its data fails the schema, the fold throws on it). The
 * projections say which event it was by throwing PoisonEventError around the work of one event; the
 * runner then records it as a dead letter instead of retrying the batch forever.
 */
import type { RecordedEvent } from '../eventStore/eventStore.js';
import { isStoreUnavailable } from '../shared/storeUnavailable.js';
import { CheckpointMismatchError } from '../readModels/checkpoints.js';
import type { DeadLetter } from './deadLetters.js';
import { describeError } from './errorText.js';

export class PoisonEventError extends Error {
  /** The dead letter it was recorded as (set by the guard, deadLetterGuard.ts), and whether that was the first time. */
  letter?: DeadLetter;
  first?: boolean;
  constructor(
    readonly projection: string,
    readonly event: RecordedEvent,
    readonly reason: unknown,
  ) {
    super(
      `projection ${projection} cannot apply event ${event.metadata.eventId} (${event.type}, ${event.streamName} revision ${event.revision}): ${describeError(reason)}`,
    );
    this.name = 'PoisonEventError';
  }
}

/** Runs the work of one event; any throw is that event's (PoisonEventError). */
export function applying<T>(projection: string, event: RecordedEvent, work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw new PoisonEventError(projection, event, error);
  }
}

// Class 40: serialization failure, deadlock; 55P03: lock not available; 57014: statement timeout; class 53: out of resources.
const TRANSIENT_SQLSTATE = /^(40|53)|^55P03$|^57014$/;

/** A failure that retrying the same batch may get past (the store, a lock, a concurrent writer), not one of the events'. */
export function isTransient(error: unknown): boolean {
  if (isStoreUnavailable(error) || error instanceof CheckpointMismatchError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TRANSIENT_SQLSTATE.test(code);
}
