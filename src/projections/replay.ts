/**
 * Replaying the log into projections outside the runner.
 *
 * - `rebuildProjections`: a projection with a shadow is rebuilt blue/green while the live one keeps
 *   serving (and its runner keeps writing): bulk-loaded into the shadow from zero, caught up with the
 *   log, then swapped in atomically. Any other (the MongoDB read model) is rebuilt in place under the
 *   projection's lock, so the server's projection must be stopped.
 * - `bulkLoad`: the fast path of a from-zero build, shared with verify: every event up to a position,
 *   read by stream (each stream's events together, so each record is written about once) and fed to
 *   every projection at once, the next page read while they write.
 */
import type { Database } from '../database/database.js';
import type { EventStore, Position, RecordedEvent, StreamCursor } from '../eventStore/eventStore.js';
import type { ShadowTable } from '../readModels/shadowTables.js';
import type { Projection } from './projection.js';

export class RebuildBusyError extends Error {
  constructor(name: string) {
    super(`A rebuild of ${name} is already running`);
  }
}

/** How many catch-up rounds a swap may take before giving up (each round ends at the head it read). */
const SWAP_ATTEMPTS = 100;

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
export async function rebuildTogether(
  store: EventStore,
  database: Database,
  projections: Projection[],
  onProgress?: (n: number) => void,
  pageSize = 5_000,
): Promise<number> {
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

/**
 * Feeds every event at or before `until` to `projections`, which start from zero (each moves its own
 * checkpoint to `until`). Stream order where the store offers it, log order otherwise.
 */
export async function bulkLoad(
  store: EventStore,
  projections: Projection[],
  until: Position,
  // 1,000: a page is parsed events, folded documents and the batch's JSON at once, and up to three are
  // held (one read ahead, one folding, one writing); at 5,000 with two held the CLI's peak RSS passed
  // 256 MB (270 MB at 200k events), and GC took more time than the smaller pages' round trips.
  { onProgress, pageSize = 1_000 }: { onProgress?: (n: number) => void; pageSize?: number } = {},
): Promise<number> {
  const readByStream = store.readByStream?.bind(store);
  // Only the streams some projection reads (every stream if one of them reads all).
  const streamPrefixes = projections.every((p) => p.streamPrefixes) ? [...new Set(projections.flatMap((p) => p.streamPrefixes!))] : undefined;
  const read = readByStream
    ? (after: RecordedEvent | null) =>
        readByStream({
          after: after && ({ streamName: after.streamName, revision: after.revision } satisfies StreamCursor),
          until,
          maxCount: pageSize,
          ...(streamPrefixes && { streamPrefixes }),
        })
    : async (after: RecordedEvent | null) =>
        (await store.readAll({ after: after?.position ?? null, maxCount: pageSize })).filter((e) => store.comparePositions(e.position, until) <= 0);
  // Read by stream, a page ends where a stream ends (a full page's trailing stream waits for the next),
  // so pages hold whole streams and are independent: while one page's writes commit, the next is folded
  // (every projection keeps its state per stream). A page waits for the writes before it when it is the
  // first (it creates the checkpoints the others move), continues a stream longer than a page, or comes
  // in log order (streams interleave across pages).
  const handle = (page: RecordedEvent[], from: Position | null) => Promise.all(projections.map((projection) => projection.handle(page, { from, to: until })));
  let handled = 0;
  let carry: RecordedEvent[] = [];
  let writing: Promise<unknown> = Promise.resolve();
  let first = true;
  let next = read(null);
  for (;;) {
    const fresh = await next;
    const more = fresh.length === pageSize;
    // Read ahead while the projections work: the next page does not depend on it.
    next = more ? read(fresh[fresh.length - 1]!) : Promise.resolve([]);
    let page = carry.length > 0 ? carry.concat(fresh) : fresh;
    carry = [];
    if (more) {
      let cut = page.length - 1;
      while (cut > 0 && page[cut - 1]!.streamName === page[cut]!.streamName) cut -= 1;
      if (cut > 0) [page, carry] = [page.slice(0, cut), page.slice(cut)];
    }
    if (page.length === 0) break;
    if (first || !readByStream || page[0]!.revision > 0n) {
      await writing;
      await handle(page, first ? null : until);
      first = false;
    } else {
      const work = handle(page, until);
      // Not awaited yet: kept from being an unhandled rejection while the page before is awaited.
      work.catch(() => undefined);
      await writing;
      writing = work;
    }
    handled += page.length;
    onProgress?.(page.length);
  }
  await writing;
  return handled;
}

type Shadow = { name: string; projection: Projection; table: ShadowTable };

/** Blue/green: bulk load into shadows, catch up, swap each in once it has reached its live checkpoint. */
async function rebuildBesideLive(store: EventStore, database: Database, projections: Projection[], onProgress?: (n: number) => void): Promise<number> {
  const locks = [];
  const shadows: Shadow[] = [];
  try {
    for (const projection of projections) {
      // One rebuild per projection at a time (they would share the shadow table).
      const lock = await database.tryLock(`rebuild:${projection.name}`);
      if (!lock) throw new RebuildBusyError(projection.name);
      locks.push(lock);
    }
    for (const projection of projections) shadows.push({ name: projection.name, ...(await projection.shadow!('rebuild')) });
    const until = await store.headPosition();
    const handled =
      until === null
        ? 0
        : await bulkLoad(
            store,
            shadows.map((s) => s.projection),
            until,
            onProgress ? { onProgress } : {},
          );
    await Promise.all(shadows.map((s) => s.table.complete()));
    const hasEventsAfter = store.hasEventsAfter?.bind(store);
    let pending = shadows;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt === SWAP_ATTEMPTS) throw new Error(`Could not swap in ${pending.map((s) => s.name).join(', ')}: the live projection kept moving ahead`);
      await Promise.all(pending.map((s) => replay(store, s.projection)));
      const swapped = await Promise.all(
        pending.map((s) =>
          s.table.trySwap(
            (a, b) => store.comparePositions(a, b),
            // A table commands write inline: under its lock no command can commit, and every event of
            // the projection's streams that did commit must be in the shadow, or its row would vanish.
            hasEventsAfter && s.table.writtenInline ? async (sql, position) => !(await hasEventsAfter(sql, position, s.projection.streamPrefixes)) : undefined,
          ),
        ),
      );
      pending = pending.filter((_, i) => !swapped[i]);
    }
    return handled;
  } catch (error) {
    for (const shadow of shadows) await shadow.table.drop().catch(() => undefined);
    throw error;
  } finally {
    for (const lock of locks) await lock.release();
  }
}

/**
 * Rebuilds projections from zero: blue/green where they have a shadow, in place (under their locks)
 * otherwise. Returns the number of events read by the first of the two runs it needed.
 */
export async function rebuildProjections(store: EventStore, database: Database, projections: Projection[], onProgress?: (n: number) => void): Promise<number> {
  const besideLive = projections.filter((p) => p.shadow);
  const inPlace = projections.filter((p) => !p.shadow);
  let handled = 0;
  if (besideLive.length > 0) handled = await rebuildBesideLive(store, database, besideLive, onProgress);
  if (inPlace.length > 0) {
    const n = await rebuildTogether(store, database, inPlace, besideLive.length > 0 ? undefined : onProgress);
    handled ||= n;
  }
  return handled;
}
