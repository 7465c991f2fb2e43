/**
 * verify: every read model must equal a fresh replay. Builds each read model again, up to the live
 * read model's checkpoint: on PostgreSQL/PGlite into a shadow table with the rebuild's bulk load, then
 * compared with the live table in SQL (only differing rows leave the database); on MongoDB into a
 * scratch collection, compared record by record (both scanned in id order, in bounded pages).
 */
import type { EventStore, Position } from '../eventStore/eventStore.js';
import type { DeviceDispenseStore } from '../readModels/deviceDispenseStore.js';
import type { LicenseStore } from '../readModels/licenseStore.js';
import { createDeviceDispensesProjection, DEVICE_DISPENSES_PROJECTION } from './deviceDispensesProjection.js';
import { createLicensesProjection } from './licensesProjection.js';
import type { Projection } from './projection.js';
import { bulkLoad, replay } from './replay.js';
import type { DeadLetters } from './deadLetters.js';
import { withDeadLetters } from './deadLetterGuard.js';
import { silentLogger } from '../logger.js';

export type Difference = { id: string; kind: 'missing' | 'unexpected' | 'different'; paths: Array<{ path: string; readModel: unknown; replay: unknown }> };
export type VerifyResult = { readModel: string; checkpoint: Position | null; records: number; differences: Difference[]; moved: boolean };

const MAX_REPORTED = 100;

/** Paths where two JSON values differ (first few only). */
function jsonDifferences(a: unknown, b: unknown, path = '$', out: Difference['paths'] = []): Difference['paths'] {
  if (out.length >= 10) return out;
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const key of [...keys].sort()) {
      const child = Array.isArray(a) ? `${path}[${key}]` : `${path}.${key}`;
      jsonDifferences((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], child, out);
    }
    return out;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path, readModel: a, replay: b });
  return out;
}

/** Merges two id-ordered scans into differences. */
async function compareScans<T extends { id: string }>(
  live: AsyncIterable<T>,
  fresh: AsyncIterable<T>,
): Promise<{ records: number; differences: Difference[] }> {
  const a = live[Symbol.asyncIterator]();
  const b = fresh[Symbol.asyncIterator]();
  let [x, y] = await Promise.all([a.next(), b.next()]);
  const differences: Difference[] = [];
  let records = 0;
  const note = (difference: Difference) => differences.length < MAX_REPORTED && differences.push(difference);
  while (!x.done || !y.done) {
    records += 1;
    if (y.done || (!x.done && x.value.id < y.value.id)) {
      note({ id: x.value!.id, kind: 'unexpected', paths: [] });
      x = await a.next();
    } else if (x.done || y.value.id < x.value.id) {
      note({ id: y.value.id, kind: 'missing', paths: [] });
      y = await b.next();
    } else {
      const paths = jsonDifferences(x.value, y.value);
      if (paths.length) note({ id: x.value.id, kind: 'different', paths });
      [x, y] = await Promise.all([a.next(), b.next()]);
    }
  }
  return { records, differences };
}

async function verifyOne(
  store: EventStore,
  name: string,
  live: { readCheckpoint(): Promise<Position | null>; scan(): AsyncIterable<{ id: string }> },
  scratch: Projection & { scan(): AsyncIterable<{ id: string }> },
  onProgress?: (n: number) => void,
): Promise<VerifyResult> {
  const checkpoint = await live.readCheckpoint();
  await scratch.reset();
  if (checkpoint !== null) await replay(store, scratch, { until: checkpoint, ...(onProgress ? { onProgress } : {}) });
  const { records, differences } = await compareScans(live.scan(), scratch.scan());
  const moved = (await live.readCheckpoint()) !== checkpoint; // a running server went on meanwhile
  await scratch.reset();
  return { readModel: name, checkpoint, records, differences, moved };
}

/**
 * Replays into the live projections' shadows (one reader for those at the same checkpoint) and lets
 * the database compare each shadow with its live table.
 */
async function verifyBesideLive(store: EventStore, lives: Projection[], onProgress?: (n: number) => void): Promise<Map<string, VerifyResult>> {
  const results = new Map<string, VerifyResult>();
  const groups = new Map<Position | null, Projection[]>();
  for (const live of lives) {
    const checkpoint = await live.readCheckpoint();
    groups.set(checkpoint, [...(groups.get(checkpoint) ?? []), live]);
  }
  for (const [checkpoint, group] of groups) {
    const shadows: Array<Awaited<ReturnType<NonNullable<Projection['shadow']>>>> = [];
    try {
      for (const live of group) shadows.push(await live.shadow!('verify'));
      if (checkpoint !== null)
        await bulkLoad(
          store,
          shadows.map((s) => s.projection),
          checkpoint,
          onProgress ? { onProgress } : {},
        );
      for (const [i, live] of group.entries()) {
        const { records, rows } = await shadows[i]!.table.differences(MAX_REPORTED);
        const differences = rows.map(({ id, live: inReadModel, shadow: inReplay }): Difference => {
          if (inReadModel === null) return { id, kind: 'missing', paths: [] };
          if (inReplay === null) return { id, kind: 'unexpected', paths: [] };
          return { id, kind: 'different', paths: jsonDifferences(inReadModel, inReplay) };
        });
        const moved = (await live.readCheckpoint()) !== checkpoint; // a running server went on meanwhile
        results.set(live.name, { readModel: live.name, checkpoint, records, differences, moved });
      }
    } finally {
      for (const shadow of shadows) await shadow.table.drop();
    }
  }
  return results;
}

/**
 * What verify reads and writes: the event store, the live read models, and an opener for scratch
 * read models (same adapters, other tables/collections) it replays into.
 */
export type VerifyPorts = {
  eventStore: EventStore;
  deviceDispenses: DeviceDispenseStore;
  licenses: LicenseStore;
  openScratch(): Promise<{ deviceDispenses: DeviceDispenseStore }>;
  /** With them, the replay leaves out what the live projections left out (parked and skipped events). */
  deadLetters?: DeadLetters;
};

/** Verifies each named read model (default: all), in the order of READ_MODEL_PROJECTIONS. */
export async function verifyReadModels(stores: VerifyPorts, names: readonly string[], onProgress?: (n: number) => void): Promise<VerifyResult[]> {
  const { deadLetters } = stores;
  // Read-only: a poison event no dead letter names fails verify (it is not recorded from here).
  const guarded = (p: Projection, name = p.name) =>
    deadLetters ? withDeadLetters(p, { deadLetters, onPoison: 'stop', logger: silentLogger(), record: false, name }) : p;
  const lives = [createDeviceDispensesProjection(stores.deviceDispenses), createLicensesProjection(stores.licenses)]
    .filter((p) => names.includes(p.name))
    .map((p) => guarded(p));
  const besideLive = await verifyBesideLive(
    stores.eventStore,
    lives.filter((p) => p.shadow),
    onProgress,
  );
  const results: VerifyResult[] = [];
  for (const live of lives) {
    const result = besideLive.get(live.name);
    if (result) {
      results.push(result);
      continue;
    }
    // MongoDB (device_dispenses): a scratch collection, compared by scanning both.
    const scratch = await stores.openScratch();
    const projection = guarded(createDeviceDispensesProjection(scratch.deviceDispenses, `verify:${DEVICE_DISPENSES_PROJECTION}`), DEVICE_DISPENSES_PROJECTION);
    results.push(
      await verifyOne(
        stores.eventStore,
        DEVICE_DISPENSES_PROJECTION,
        { readCheckpoint: () => live.readCheckpoint(), scan: () => stores.deviceDispenses.scan() },
        { ...projection, scan: () => scratch.deviceDispenses.scan() },
        onProgress,
      ),
    );
  }
  return results;
}

export function describeResult(result: VerifyResult): string {
  const head = `${result.readModel}: ${result.records} record(s) up to ${result.checkpoint ?? 'the beginning'}`;
  if (result.moved) return `${head}: the live read model moved during verification (a server is writing); run again`;
  if (result.differences.length === 0) return `${head}: equal to a fresh replay`;
  const lines = result.differences.map((d) =>
    d.kind === 'different'
      ? `  ${d.id}: differs\n${d.paths.map((p) => `    ${p.path}: read model ${JSON.stringify(p.readModel)} ≠ replay ${JSON.stringify(p.replay)}`).join('\n')}`
      : `  ${d.id}: ${d.kind === 'missing' ? 'missing from the read model' : 'in the read model but not in the replay'}`,
  );
  return `${head}: ${result.differences.length} difference(s)\n${lines.join('\n')}`;
}
