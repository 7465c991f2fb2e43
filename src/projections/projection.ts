import type { Position, RecordedEvent } from '../eventStore/eventStore.js';
import type { ShadowPurpose, ShadowTable } from '../readModels/shadowTables.js';

/**
 * A projection (read model) or reactor fed from the global log. `handle` must record `to` as its
 * checkpoint atomically with its writes, or make its writes idempotent so a replayed batch is harmless.
 */
export interface Projection {
  readonly name: string;
  /** The streams it reads, by name prefix (a rebuild reads only those); absent: every stream. */
  readonly streamPrefixes?: readonly string[];
  readCheckpoint(): Promise<Position | null>;
  /**
   * `lazy` (the live runner): the caller keeps `to` in memory, so when the batch changes nothing the
   * projection may skip its transaction and answer false (checkpoint not stored). Otherwise it always
   * stores `to` (a replay's chain of checkpoints depends on it).
   */
  handle(events: RecordedEvent[], checkpoint: { from: Position | null; to: Position; lazy?: boolean }): Promise<boolean | void>;
  /** The events this projection reads; the live runner does not call `handle` for a batch without any. */
  relevant?(event: RecordedEvent): boolean;
  /** Forget everything (rebuild from zero). */
  reset(): Promise<void>;
  /**
   * Optional: the same projection writing to an empty shadow of its read model, beside the live one
   * (blue/green rebuild, verify). Without it a rebuild runs in place with the live projection stopped.
   */
  shadow?(purpose: ShadowPurpose): Promise<{ projection: Projection; table: ShadowTable }>;
}
