/**
 * Replaying the log into a projection outside the runner: `rebuild` (the live read model, from zero,
 * under the projection's lock) and `verify` (a scratch copy built up to the live checkpoint).
 */
import type { Database } from '../database/database.js';
import type { EventStore, Position } from '../eventStore/eventStore.js';
import type { Projection } from './projection.js';

export class ProjectionBusyError extends Error {
  constructor(name: string) {
    super(`Projection ${name} is active in another process (a running server?); stop it first`);
  }
}

/** Feeds the log to `projection` from its checkpoint up to `until` (inclusive) or the head. */
export async function replay(
  store: EventStore,
  projection: Projection,
  { until = null, pageSize = 5_000, onProgress }: { until?: Position | null; pageSize?: number; onProgress?: (n: number) => void } = {},
): Promise<number> {
  let from = await projection.readCheckpoint();
  let handled = 0;
  for (;;) {
    const page = await store.readAll({ after: from, maxCount: pageSize });
    const batch = until === null ? page : page.filter((e) => store.comparePositions(e.position, until) <= 0);
    if (batch.length === 0) return handled;
    const to = batch[batch.length - 1]!.position;
    await projection.handle(batch, { from, to });
    from = to;
    handled += batch.length;
    onProgress?.(batch.length);
    if (batch.length < page.length) return handled;
  }
}

/** Rebuilds a projection from zero, holding the same lock the runner holds while it runs. */
export async function rebuild(store: EventStore, database: Database, projection: Projection, onProgress?: (n: number) => void): Promise<number> {
  const lock = await database.tryLock(`projection:${projection.name}`);
  if (!lock) throw new ProjectionBusyError(projection.name);
  try {
    await projection.reset();
    return await replay(store, projection, onProgress ? { onProgress } : {});
  } finally {
    await lock.release();
  }
}
