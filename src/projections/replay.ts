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
  return rebuildTogether(store, database, [projection], onProgress);
}

/**
 * Rebuilds several projections from zero with one reader: each page of the log is read once and
 * handed to every projection at the same time (each writes its own batch and checkpoint), and the
 * next page is read while they write. Holds every projection's lock meanwhile.
 */
export async function rebuildTogether(store: EventStore, database: Database, projections: Projection[], onProgress?: (n: number) => void, pageSize = 5_000): Promise<number> {
  const locks = [];
  try {
    for (const projection of projections) {
      const lock = await database.tryLock(`projection:${projection.name}`);
      if (!lock) throw new ProjectionBusyError(projection.name);
      locks.push(lock);
    }
    for (const projection of projections) await projection.reset();
    let from: Position | null = null;
    let handled = 0;
    let next = store.readAll({ after: null, maxCount: pageSize });
    for (;;) {
      const page = await next;
      if (page.length === 0) return handled;
      const to = page[page.length - 1]!.position;
      // Read ahead while the projections write: the page after `to` does not depend on their work.
      next = page.length === pageSize ? store.readAll({ after: to, maxCount: pageSize }) : Promise.resolve([]);
      const batchFrom = from;
      await Promise.all(projections.map((projection) => projection.handle(page, { from: batchFrom, to })));
      from = to;
      handled += page.length;
      onProgress?.(page.length);
    }
  } finally {
    for (const lock of locks) await lock.release();
  }
}
