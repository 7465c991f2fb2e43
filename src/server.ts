/**
 * Composition root: builds every adapter from the configuration, plugs them into the ports, and
 * starts/stops the HTTP server and the background work (projections, job worker, sweeps).
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { createTokenVerifier, loadJwksFile } from './auth/accessTokens.js';
import { ensureDevSigningKey, mintToken, tokenAudience } from './auth/devKeys.js';
import { MIS_SCOPES } from './auth/scopes.js';
import { ConfigError, type Config } from './config.js';
import type { Database, SessionLock } from './database/database.js';
import { createOutage } from './shared/outage.js';
import type { EventStore } from './eventStore/eventStore.js';
import { openStores, type Stores } from './stores.js';
import { createHttpApp } from './http/app.js';
import { callersOf } from './http/openapi.js';
import { registerServiceRoutes } from './http/serviceRoutes.js';
import { createMetrics } from './observability/metrics.js';
import { fastLanes, registerRoutes } from './http/routes.js';
import { idempotency } from './http/idempotency.js';
import { createIdempotencyKeyStore, type IdempotencyKeyStore } from './idempotency/idempotencyKeyStore.js';
import { createJobStore, type JobStore, type NewJob } from './jobs/jobStore.js';
import { createJobWorker, type JobWorker } from './jobs/jobWorker.js';
import { createJobWatch, type JobWatch } from './jobs/jobWatch.js';
import { deviceDispenseJobHandlers } from './jobs/deviceDispenseJobs.js';
import { expireDeviceDispenses } from './commands/expireDeviceDispense.js';
import type { CommandDeps } from './commands/shared/commandContext.js';
import { createAggregateCache } from './commands/shared/aggregateCache.js';
import { createFilesystemMediaStorage } from './media/mediaStorage.js';
import type { Projection } from './projections/projection.js';
import { createProjections } from './projections/registry.js';
import { createEventManagerDelivery, type EventManagerDelivery } from './eventManager/delivery.js';
import type { LicenseStore } from './readModels/licenseStore.js';
import { importLicenses } from './commands/importLicenses.js';
import { createProjectionRunner, type ProjectionRunner } from './projections/projectionRunner.js';
import { createDeadLetters, type DeadLetters } from './projections/deadLetters.js';
import { createDegradations, type Degradations } from './observability/degradations.js';
import { poisonDegradations } from './queries/poisonEvents.js';
import { createInlineProjections } from './projections/inlineProjections.js';
import { createLogFeed } from './projections/logFeed.js';
import { checkCheckpoints } from './projections/checkpointSanity.js';
import { createRebuilds, type Rebuilds } from './projections/rebuilds.js';
import type { Logger } from './logger.js';
import type { DeviceDispenseStore } from './readModels/deviceDispenseStore.js';
import type { ParsedReferenceDataFile, ReferenceDataFile } from './referenceData/referenceData.js';
import { demoReferenceFile, openReferenceData } from './referenceData/openReferenceData.js';
import type { ReferenceService } from './referenceData/referenceService.js';
import { REFERENCE_ROUTE } from './http/referenceRoutes.js';
import { ensureDevPki, type Signer } from './signatures/devPki.js';
import { loadTrustedCAFile } from './signatures/trustStore.js';
import { loadAnchorKeys } from './audit/anchorKey.js';
import { createAnchorer, type Anchorer } from './audit/anchors.js';

export type Clock = () => Date;

/** LISTEN/NOTIFY channel of the job worker and job waiters (qualified by the schema). */
const JOBS_CHANNEL = 'jobs';

/**
 * What the server built, for the routes (which take their narrow part of it, RouteDeps), the sweeps
 * and the tests. Commands are built from `commandDeps` alone; queries from the read-model ports.
 */
export type Context = {
  config: Config;
  stores: Stores;
  logger: Logger;
  database: Database;
  eventStore: EventStore;
  deviceDispenses: DeviceDispenseStore;
  licenses: LicenseStore;
  jobs: JobStore;
  jobWatch: JobWatch;
  idempotencyKeys: IdempotencyKeyStore;
  reference: ReferenceService;
  projections: { deviceDispenses: ProjectionRunner; licenses: ProjectionRunner; statusChangeEvents: ProjectionRunner };
  projectionDefinitions: Projection[];
  rebuilds: Rebuilds;
  commandDeps: CommandDeps;
  deadLetters: DeadLetters;
  degradations: Degradations;
};

/** Generated on first start when no JWKS / trusted CA is configured; null parts are configured ones. */
export type DevCredentials = {
  token: { demoToken: string; privateJwk: JWK } | null;
  signer: Signer | null;
  /** The demo reference data was loaded at this start (an empty store in development). */
  demoReferenceData: boolean;
};

export type ServerOptions = {
  config: Config;
  logger: Logger;
  /** Loaded at start instead of REFERENCE_DATA_FILE / the demo data (tests). */
  referenceData?: ReferenceDataFile;
  clock?: Clock;
  /** Projections, job worker and sweeps; tests of the HTTP frame alone can leave them off. */
  background?: boolean;
  /** Overrides the event store built from the configuration (contract tests). */
  eventStore?: EventStore;
  /** Overrides the database built from the configuration (fault-injection tests). */
  database?: Database;
};

export type RunningServer = {
  context: Context;
  app: ReturnType<typeof createHttpApp>;
  worker: JobWorker;
  dev: DevCredentials;
  /** Writes an anchor now over what was appended since the last one (also done periodically). */
  anchorer: Anchorer;
  /** One auto-expiration sweep now (also run on EXPIRATION_SWEEP_INTERVAL_SECONDS). */
  runExpirationSweep(): Promise<void>;
  listen(): Promise<string>;
  stop(): Promise<void>;
};

/** The demo identity: the first user of the reference data, acting for their first employer. */
function demoIdentity(file: ParsedReferenceDataFile) {
  const user = file.users[0];
  const party = user && file.parties.find((p) => p.id === user.party_id);
  const employee = user && file.employees.find((e) => e.party_id === user.party_id);
  if (!user || !party || !employee) throw new Error('Reference data needs a user with a party and an employee for the demo token');
  return { userId: user.id, legalEntityId: employee.legal_entity_id, taxId: party.tax_id.replace(/\s/g, '') };
}

export async function createServer(options: ServerOptions): Promise<RunningServer> {
  const { config, logger } = options;
  const clock = options.clock ?? (() => new Date());

  const stores = await openStores(config, logger, {
    ...(options.eventStore ? { eventStore: options.eventStore } : {}),
    ...(options.database ? { database: options.database } : {}),
  });
  const { database, eventStore, deviceDispenses, licenses } = stores;
  const closers: Array<() => Promise<void>> = [() => stores.close()];
  try {
    const jobs = await createJobStore(database, { leaseSeconds: config.JOB_LEASE_SECONDS });
    const idempotencyKeys = await createIdempotencyKeyStore(database);
    const reference = await openReferenceData({ config, database, logger, ...(options.referenceData ? { file: options.referenceData } : {}) });
    closers.unshift(() => reference.close());

    // Production serves only on reference data someone loaded: demo data is never loaded there.
    if (config.PRODUCTION && !(await reference.store.holds('legal_entities')))
      throw new ConfigError(
        'Refusing to start in production (NODE_ENV=production): the reference tables hold no legal entity; load them with `cli reference import <file>` (or REFERENCE_DATA_FILE)',
      );
    // Development credentials only for what the configuration leaves open (the embedded default);
    // production mode never gets here with one open (loadConfig refused it), and never generates them.
    const needsDevKey = !config.AUTH_JWKS_FILE && !config.AUTH_JWKS_URL;
    if (config.PRODUCTION && (needsDevKey || !config.DS_TRUSTED_CA_FILE || !config.AUDIT_ANCHOR_KEY_FILE))
      throw new ConfigError('Refusing to generate development keys in production (NODE_ENV=production)');
    const identity = needsDevKey || !config.DS_TRUSTED_CA_FILE ? demoIdentity(reference.file ?? demoReferenceFile()) : null;
    const devDir = join(config.DATA_DIR, 'dev');
    const devKey = needsDevKey ? await ensureDevSigningKey(join(devDir, 'auth')) : null;
    const devPki = identity && !config.DS_TRUSTED_CA_FILE ? await ensureDevPki(join(devDir, 'pki'), identity.taxId) : null;
    const { issuer, audience } = tokenAudience(config, needsDevKey);
    const verifier = createTokenVerifier({
      jwks: config.AUTH_JWKS_URL ? new URL(config.AUTH_JWKS_URL) : await loadJwksFile(config.AUTH_JWKS_FILE ?? devKey!.jwksPath),
      ...(issuer ? { issuer } : {}),
      ...(audience ? { audience } : {}),
      clockToleranceSeconds: config.AUTH_CLOCK_SKEW_SECONDS,
      maxLifetimeSeconds: config.AUTH_MAX_TOKEN_LIFETIME_SECONDS,
    });
    const trustedCAs = await loadTrustedCAFile(config.DS_TRUSTED_CA_FILE ?? devPki!.caPemPath);
    const dev: DevCredentials = {
      token: devKey &&
        identity && {
          privateJwk: devKey.privateJwk,
          demoToken: await mintToken(devKey.privateJwk, {
            sub: identity.userId,
            client_id: identity.legalEntityId,
            // Own-entity scopes only: audit:read_all is the national auditor's, not a pharmacy's.
            scope: MIS_SCOPES.join(' '),
            expiresIn: Math.min(12 * 3600, config.AUTH_MAX_TOKEN_LIFETIME_SECONDS),
            ...(issuer ? { issuer } : {}),
            ...(audience ? { audience } : {}),
          }),
        },
      signer: devPki?.signer ?? null,
      demoReferenceData: reference.demo,
    };

    const media = createFilesystemMediaStorage(join(config.DATA_DIR, 'media'));
    const aggregates = createAggregateCache(config.AGGREGATE_CACHE_SIZE);
    const deadLetters = await createDeadLetters(database);
    const metrics = createMetrics({
      database,
      eventStore,
      projections: () => Object.values(projections),
      aggregates,
      deadLetters,
      reference: () => reference.service.stats(),
    });
    const commandDeps: CommandDeps = {
      eventStore: metrics.instrumentEventStore(eventStore),
      reference: reference.service,
      trustedCAs,
      media,
      clock,
      clockSkewMs: config.DS_CLOCK_SKEW_SECONDS * 1000,
      aggregates,
    };
    const definitions = await createProjections(stores, { deadLetters, onPoison: config.ON_POISON_EVENT, logger });
    // One reader of the log feeds every projection of this process.
    const feed = createLogFeed(eventStore);
    const runnerOf = (projection: Projection) => createProjectionRunner({ store: eventStore, database, projection, logger, feed, deadLetters });
    const projections = {
      deviceDispenses: runnerOf(definitions.deviceDispenses),
      licenses: runnerOf(definitions.licenses),
      statusChangeEvents: runnerOf(definitions.statusChangeEvents),
    };
    // Without EVENT_MANAGER_URL the StatusChangeEvents stay in the local event-manager log only.
    const delivery: EventManagerDelivery | null = config.EVENT_MANAGER_URL
      ? await createEventManagerDelivery({ database, url: config.EVENT_MANAGER_URL, logger, minBackoffMs: config.EVENT_MANAGER_RETRY_MIN_MS })
      : null;
    const jobWatch = createJobWatch();
    // Tells this process's own NOTIFYs from the others'.
    const instance = randomUUID();
    const context: Context = {
      config,
      stores,
      logger,
      database,
      eventStore,
      deviceDispenses,
      licenses,
      jobs,
      jobWatch,
      idempotencyKeys,
      reference: reference.service,
      projections,
      projectionDefinitions: Object.values(definitions),
      rebuilds: createRebuilds({ eventStore, database, logger, clock }),
      commandDeps,
      deadLetters,
      degradations: createDegradations(),
    };
    // Readiness lists these under `degraded` (one line per condition; later ones register here too).
    context.degradations.register('poison events', () => poisonDegradations(deadLetters));

    // Commands commit their read-model rows and their job's outcome with their events where the stores allow it.
    const inlineProjections = stores.atomic && createInlineProjections(deviceDispenses);
    const atomic = stores.atomic;
    const worker = createJobWorker({
      jobs,
      handlers: metrics.instrumentJobs({ ...deviceDispenseJobHandlers(commandDeps, projections.deviceDispenses) }),
      logger,
      concurrency: config.JOB_CONCURRENCY,
      ...(atomic && inlineProjections
        ? { inline: { appendAtomically: (appends, alsoWrite) => atomic.appendAtomically(appends, alsoWrite), project: inlineProjections } }
        : {}),
      // Processes on one database wake each other: a queued job wakes an idle worker anywhere, a job
      // that ends answers its waiters anywhere (the NOTIFY is only sent for queued jobs, which are rare).
      onQueued: () => void database.notify(JOBS_CHANNEL, `queued:${instance}`).catch(() => undefined),
      onFinished: (job, { queued }) => {
        jobWatch.finished(job);
        if (queued) void database.notify(JOBS_CHANNEL, `ended:${job.id}`).catch(() => undefined);
      },
    });
    const jobMessages = await database.listen(JOBS_CHANNEL, (payload) => {
      const [what, about] = payload.split(':');
      if (what === 'queued' && about !== instance) worker.wake();
      if (what === 'ended' && about) jobWatch.signal(about);
    });
    closers.unshift(() => jobMessages.close());
    // A derived PUBLIC_URL takes the port a PORT=0 listen got; a configured one is kept as set.
    let publicUrl = config.PUBLIC_URL;
    const routeDeps = { context, accept: (job: NewJob) => worker.accept(job) };
    const app = createHttpApp({
      logger,
      verifier,
      bodyLimit: config.BODY_LIMIT,
      ndjsonBatches: { pathPrefix: REFERENCE_ROUTE, limit: config.REFERENCE_BATCH_BODY_LIMIT },
      publicUrl: () => publicUrl,
      corsAllowedOrigins: config.CORS_ALLOWED_ORIGINS,
      idempotent: idempotency({ store: idempotencyKeys, ttlSeconds: config.IDEMPOTENCY_KEY_TTL_SECONDS, clock, logger }),
      routes: (router, authorize) => registerRoutes(router, authorize, routeDeps),
      observeHttp: metrics.observeHttp,
      fastLanes: fastLanes(routeDeps),
      callerClasses: { of: callersOf, facts: { reference: context.reference, jobs: context.jobs } },
      serviceRoutes: (router, authorize) =>
        registerServiceRoutes(router, authorize, {
          health: {
            database,
            eventStore,
            deviceDispenses,
            licenses,
            projections: () => Object.values(projections),
            running: () => backgroundRunning,
            logger,
            degradations: context.degradations,
          },
          metrics,
          config,
          publicUrl: () => publicUrl,
        }),
    });

    // Signed anchors over the whole log (issue 16); one process at a time writes them.
    const anchorer = createAnchorer({
      database,
      eventStore,
      key: (await loadAnchorKeys(config)).signing,
      settings: { everyEvents: config.AUDIT_ANCHOR_EVERY_EVENTS, intervalSeconds: config.AUDIT_ANCHOR_INTERVAL_SECONDS },
      logger,
      clock,
    });

    let server: Server | null = null;
    let stopped = false;
    let backgroundRunning = false;
    const sweep = createExpirationSweep(context, config.EXPIRATION_SWEEP_INTERVAL_SECONDS * 1000);
    // Before anything is appended: a checkpoint past the log's head (event store wiped/replaced) must not skip events.
    await checkCheckpoints(eventStore, Object.values(definitions), config.ON_CHECKPOINT_AHEAD, logger);
    // Licences issued before this registry took over enter as events (appends nothing when done before).
    const imported = await importLicenses(commandDeps, reference.file?.licenses ?? []);
    if (imported.imported > 0) logger.info({ imported: imported.imported }, 'licences imported from the reference data');
    if (options.background ?? true) {
      for (const runner of Object.values(projections)) await runner.start();
      // Licence methods find a licence through the read model: serve once it shows the import.
      if (imported.position) await projections.licenses.waitFor(imported.position, 60_000);
      worker.start();
      sweep.start();
      await delivery?.start();
      anchorer.start();
      backgroundRunning = true;
    }
    closers.unshift(async () => {
      sweep.stop();
      await anchorer.stop();
      await delivery?.stop();
      await worker.stop();
      await context.rebuilds.idle();
      for (const runner of Object.values(projections)) await runner.stop();
    });

    return {
      context,
      app,
      worker,
      dev,
      anchorer,
      runExpirationSweep: () => sweep.run(),
      listen: () =>
        new Promise((resolve, reject) => {
          server = app.listen(config.PORT, config.HOST, (error?: Error) => {
            if (error) return reject(error);
            const address = server!.address();
            const port = typeof address === 'object' && address ? address.port : config.PORT;
            const url = `http://${config.HOST === '0.0.0.0' ? 'localhost' : config.HOST}:${port}`;
            if (!config.PUBLIC_URL_CONFIGURED) publicUrl = url;
            resolve(url);
          });
        }),
      async stop() {
        if (stopped) return;
        stopped = true;
        backgroundRunning = false; // /health/ready answers 503 from now on: balancers stop sending
        jobWatch.close(); // long-polling job GETs answer now, so the requests in flight can end
        if (server) {
          const closing = server;
          // Stop accepting; in-flight requests finish. Keep-alive connections that go idle after their
          // last answer are closed as they do, not after keepAliveTimeout.
          const idle = setInterval(() => closing.closeIdleConnections(), 100);
          await new Promise<void>((resolve) => closing.close(() => resolve()));
          clearInterval(idle);
        }
        for (const close of closers) await close().catch((error: unknown) => logger.error({ err: error }, 'error while stopping'));
      },
    };
  } catch (error) {
    for (const close of closers) await close().catch(() => undefined);
    throw error;
  }
}

/** Runs the auto-expiration sweep on an interval; one process at a time across a cluster (advisory lock).
 * A failed sweep is simply tried again at the next interval (logged once per outage). */
function createExpirationSweep(context: Context, intervalMs: number) {
  let timer: NodeJS.Timeout | null = null;
  let running = false;
  const outage = createOutage(context.logger.child({ component: 'expiration_sweep' }), 'expiration sweep');
  const run = async () => {
    if (running) return;
    running = true;
    let lock: SessionLock | null = null;
    try {
      lock = await context.database.tryLock('sweep:device_dispense_expiration');
      if (!lock) return;
      const expired = await expireDeviceDispenses(context.commandDeps, context.deviceDispenses);
      outage.recovered();
      if (expired > 0) context.logger.info({ expired }, 'device dispenses expired');
    } catch (error) {
      outage.failed(error);
    } finally {
      await lock?.release();
      running = false;
    }
  };
  return {
    start: () => void (timer = setInterval(() => void run(), intervalMs)),
    stop: () => timer && clearInterval(timer),
    run,
  };
}
