import type { Position, RecordedEvent } from '../eventStore/eventStore.js';

/**
 * A projection (read model) or reactor fed from the global log. `handle` must record `to` as its
 * checkpoint atomically with its writes, or make its writes idempotent so a replayed batch is harmless.
 */
export interface Projection {
  readonly name: string;
  readCheckpoint(): Promise<Position | null>;
  handle(events: RecordedEvent[], checkpoint: { from: Position | null; to: Position }): Promise<void>;
  /** Forget everything (rebuild from zero). */
  reset(): Promise<void>;
}
