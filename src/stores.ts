/**
 * Opens the stores the configuration names: the PostgreSQL server or PGlite database, the event store
 * (PostgreSQL/PGlite or EventStoreDB) and both read models. The server and the operator CLI share it.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from './config.js';
import { openPostgres, type Database } from './database/database.js';
import { openPGlite } from './database/pglite.js';
import type { EventStore } from './eventStore/eventStore.js';
import { createEventStoreDbEventStore } from './eventStore/eventStoreDbEventStore.js';
import { createPostgresEventStore, type PostgresEventStore } from './eventStore/postgresEventStore.js';
import type { Logger } from './logger.js';
import type { DeviceDispenseStore } from './readModels/deviceDispenseStore.js';
import { createLicenseStore, type LicenseStore } from './readModels/licenseStore.js';
import { createMongoDeviceDispenseStore } from './readModels/mongoDeviceDispenseStore.js';
import { createPostgresDeviceDispenseStore } from './readModels/postgresDeviceDispenseStore.js';

/**
 * With the device_dispenses read model written inline (PostgreSQL/PGlite, no MongoDB), no job waits for
 * the asynchronous projections (StatusChangeEvents, catch-up), so they gather 25 ms of appends per read
 * instead of 5 ms: one client's Stop went from 5.3-6.2 to 3.2-3.3 SQL statements and from 4.9-6.7 to
 * 3.6-4.4 ms of server CPU (bench, two runs each).
 */
const INLINE_BATCH_WINDOW_MS = 25;

export type Stores = {
  database: Database;
  eventStore: EventStore;
  deviceDispenses: DeviceDispenseStore;
  licenses: LicenseStore;
  /**
   * The event store's atomic append when the read models live in its database (PostgreSQL/PGlite
   * event store and JSONB table): commands then commit their read-model rows with their events.
   */
  atomic: PostgresEventStore | null;
  /** A scratch device_dispenses read model for `verify` on MongoDB (the SQL tables verify in a shadow). */
  openScratch(): Promise<{ deviceDispenses: DeviceDispenseStore }>;
  close(): Promise<void>;
};

async function openDatabase(config: Config): Promise<Database> {
  if (config.DATABASE_URL)
    return openPostgres(config.DATABASE_URL, { max: config.DATABASE_POOL_SIZE, ...(config.DATABASE_SCHEMA ? { schema: config.DATABASE_SCHEMA } : {}) });
  const dir = join(config.DATA_DIR, 'pglite');
  await mkdir(dir, { recursive: true });
  return openPGlite(dir);
}

const openDeviceDispenses = (config: Config, database: Database, name: string) =>
  config.MONGO_URL ? createMongoDeviceDispenseStore(config.MONGO_URL, { collection: name }) : createPostgresDeviceDispenseStore(database, { table: name });

/** Overrides replace what the configuration would open (tests: a store they can break on purpose). */
export type StoreOverrides = { eventStore?: EventStore; database?: Database };

export async function openStores(config: Config, logger: Logger, overrides: StoreOverrides = {}): Promise<Stores> {
  const database = overrides.database ?? (await openDatabase(config));
  const eventStoreOverride = overrides.eventStore;
  const closers: Array<() => Promise<void>> = [() => database.close()];
  const close = async () => {
    for (const closer of closers) await closer().catch((error: unknown) => logger.error({ err: error }, 'error while closing a store'));
  };
  // The device_dispenses rows commit with the events where they live in the event store's database.
  const inline = !config.MONGO_URL;
  try {
    let eventStore = eventStoreOverride;
    let atomic: PostgresEventStore | null = null;
    if (!eventStore) {
      if (config.EVENT_STORE === 'eventstoredb')
        eventStore = await createEventStoreDbEventStore(config.EVENTSTORE_URL!, { onLog: (level, message, detail) => logger[level]({ detail }, message) });
      else
        eventStore = atomic = await createPostgresEventStore(database, {
          logger,
          ...(inline ? { batchWindowMs: INLINE_BATCH_WINDOW_MS } : {}),
        });
      const opened = eventStore;
      closers.unshift(() => opened.close());
    }
    const deviceDispenses = await openDeviceDispenses(config, database, 'device_dispenses');
    closers.unshift(() => deviceDispenses.close());
    const licenses = await createLicenseStore(database);
    return {
      database,
      eventStore,
      atomic: inline ? atomic : null,
      deviceDispenses,
      licenses,
      async openScratch() {
        const scratch = await openDeviceDispenses(config, database, 'device_dispenses_verify');
        closers.unshift(() => scratch.close());
        return { deviceDispenses: scratch };
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
