/**
 * The store combinations the registry runs on, in one table: the end-to-end suite runs the MIS round
 * trip on each, and the contract suites take their event store and read-model adapters from it. A
 * combination whose server is not configured here is reported once (`skipped: <combination>: no
 * MongoDB at MONGO_URL`) and not run; PGlite always runs.
 */
import { v4 as uuidv4 } from 'uuid';
import type { Database } from '../../src/database/database.js';
import type { EventStore } from '../../src/eventStore/eventStore.js';
import { createEventStoreDbEventStore } from '../../src/eventStore/eventStoreDbEventStore.js';
import { createPostgresEventStore, type PostgresEventStore } from '../../src/eventStore/postgresEventStore.js';
import type { DeviceDispenseStore } from '../../src/readModels/deviceDispenseStore.js';
import { createMongoDeviceDispenseStore } from '../../src/readModels/mongoDeviceDispenseStore.js';
import { createPostgresDeviceDispenseStore } from '../../src/readModels/postgresDeviceDispenseStore.js';
import { databaseFactories, reportSkipped } from './databases.js';

type Server = 'DATABASE_URL' | 'MONGO_URL' | 'EVENTSTORE_URL';
const NO_SERVER: Record<Server, string> = {
  DATABASE_URL: 'no PostgreSQL server at DATABASE_URL',
  MONGO_URL: 'no MongoDB at MONGO_URL',
  EVENTSTORE_URL: 'no EventStoreDB at EVENTSTORE_URL',
};

export type EventStoreKind = 'pglite' | 'postgres' | 'eventstoredb';
export type ReadModelKind = 'pglite' | 'postgres' | 'mongodb';

export type StoreCombination = {
  name: string;
  /** Where licences, jobs, checkpoints and (for pglite/postgres) the events live. */
  database: 'pglite' | 'postgres';
  eventStore: EventStoreKind;
  deviceDispenses: ReadModelKind;
  needs: Server[];
};

export const STORE_COMBINATIONS: readonly StoreCombination[] = [
  { name: 'pglite', database: 'pglite', eventStore: 'pglite', deviceDispenses: 'pglite', needs: [] },
  { name: 'postgres', database: 'postgres', eventStore: 'postgres', deviceDispenses: 'postgres', needs: ['DATABASE_URL'] },
  { name: 'postgres + mongodb read model', database: 'postgres', eventStore: 'postgres', deviceDispenses: 'mongodb', needs: ['DATABASE_URL', 'MONGO_URL'] },
  {
    name: 'eventstoredb + mongodb + postgres (production)',
    database: 'postgres',
    eventStore: 'eventstoredb',
    deviceDispenses: 'mongodb',
    needs: ['EVENTSTORE_URL', 'MONGO_URL', 'DATABASE_URL'],
  },
];

/** Why `combination` cannot run here (the first server it needs that is not configured), or null. */
export function missingServer(combination: Pick<StoreCombination, 'needs'>, env: NodeJS.ProcessEnv = process.env): string | null {
  const missing = combination.needs.find((server) => !env[server]);
  return missing ? NO_SERVER[missing] : null;
}

/** The combinations that can run here; one `skipped:` line for each of the others. */
export function runnableCombinations(what = ''): StoreCombination[] {
  return STORE_COMBINATIONS.filter((combination) => {
    const missing = missingServer(combination);
    if (missing) reportSkipped(`${what}${combination.name}: ${missing}`);
    return missing === null;
  });
}

/** A MongoDB URL on a database of its own (tests never share a collection). */
export function isolatedMongoUrl(url = process.env.MONGO_URL!): string {
  const parsed = new URL(url);
  parsed.pathname = `/esoz_test_${uuidv4().replace(/-/g, '').slice(0, 12)}`;
  return parsed.toString();
}

/** The settings beyond the database that make a server (or the CLI) use `combination`'s stores. */
export function combinationEnv(combination: StoreCombination): Record<string, string> {
  return {
    ...(combination.eventStore === 'eventstoredb' ? { EVENT_STORE: 'eventstoredb', EVENTSTORE_URL: process.env.EVENTSTORE_URL! } : {}),
    ...(combination.deviceDispenses === 'mongodb' ? { MONGO_URL: isolatedMongoUrl() } : {}),
  };
}

/** Distinct kinds used by the combinations, each with the servers the first combination using it needs. */
function kindsOf<K extends string>(pick: (combination: StoreCombination) => K, neededBy: (kind: K) => Server[], what: string): K[] {
  const kinds: K[] = [];
  const seen = new Set<K>();
  for (const combination of STORE_COMBINATIONS) {
    const kind = pick(combination);
    if (seen.has(kind)) continue;
    seen.add(kind);
    const missing = missingServer({ needs: neededBy(kind) });
    if (missing) reportSkipped(`${what}: ${kind}: ${missing}`);
    else kinds.push(kind);
  }
  return kinds;
}

const serverOf = (kind: string): Server[] =>
  kind === 'postgres' ? ['DATABASE_URL'] : kind === 'mongodb' ? ['MONGO_URL'] : kind === 'eventstoredb' ? ['EVENTSTORE_URL'] : [];

const openDatabase = (kind: 'pglite' | 'postgres'): Promise<Database> =>
  databaseFactories()
    .find((factory) => factory.name === kind)!
    .open();

export type EventStoreAdapter = {
  name: EventStoreKind;
  open(): Promise<{ store: EventStore; close(): Promise<void>; postgres?: { store: PostgresEventStore; database: Database } }>;
};

/** Every event store adapter of the table that can run here (the event store contract suite). */
export function eventStoreAdapters(): EventStoreAdapter[] {
  return kindsOf((c) => c.eventStore, serverOf, 'event store contract').map((name) => ({
    name,
    async open() {
      if (name === 'eventstoredb') {
        const store = await createEventStoreDbEventStore(process.env.EVENTSTORE_URL!);
        return { store, close: () => store.close() };
      }
      const database = await openDatabase(name);
      const store = await createPostgresEventStore(database, { pollIntervalMs: 20 });
      return { store, close: () => database.close(), ...(name === 'postgres' ? { postgres: { store, database } } : {}) };
    },
  }));
}

export type DeviceDispenseStoreAdapter = { name: ReadModelKind; open(): Promise<{ store: DeviceDispenseStore; close(): Promise<void> }> };

/** Every `device_dispenses` read-model adapter of the table that can run here (its contract suite). */
export function deviceDispenseStoreAdapters(): DeviceDispenseStoreAdapter[] {
  return kindsOf((c) => c.deviceDispenses, serverOf, 'device_dispenses contract').map((name) => ({
    name,
    async open() {
      if (name === 'mongodb') {
        const store = await createMongoDeviceDispenseStore(process.env.MONGO_URL!, { collection: `device_dispenses_${uuidv4().slice(0, 8)}` });
        return { store, close: () => store.close() };
      }
      const database = await openDatabase(name);
      return { store: await createPostgresDeviceDispenseStore(database), close: () => database.close() };
    },
  }));
}
