/**
 * Prometheus metrics (prom-client), one registry per server (tests run several servers in one
 * process). Counters and histograms are fed where things happen (HTTP frame, job handlers, event-store
 * appends); gauges read the stores at scrape time, so every process of a cluster reports the same
 * backlog and lag.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Database } from '../database/database.js';
import { WrongExpectedRevisionError, type EventStore } from '../eventStore/eventStore.js';
import type { ProjectionRunner } from '../projections/projectionRunner.js';
import { EsozError } from '../domain/shared/esozError.js';
import type { JobHandlers } from '../jobs/jobWorker.js';
import { countPendingJobs } from '../jobs/jobStore.js';
import type { AggregateCache } from '../commands/shared/aggregateCache.js';
import { readPendingDelivery, type PendingDelivery } from '../eventManager/eventManagerLog.js';
import { DEAD_LETTER_STATUSES, type DeadLetters } from '../projections/deadLetters.js';
import { PROJECTION_NAMES } from '../projections/registry.js';
import type { ReferenceCacheStats } from '../referenceData/referenceCache.js';

export type MetricsSources = {
  database: Database;
  eventStore: EventStore;
  projections: () => ProjectionRunner[];
  /** The command handler's aggregate cache (its counts are read at scrape time). */
  aggregates?: AggregateCache;
  /** Dead letters per projection and status (read at scrape time). */
  deadLetters?: Pick<DeadLetters, 'counts'>;
  /** The reference-data cache's counts (views served whole from it, lookups, entries). */
  reference?: () => ReferenceCacheStats;
};

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics(sources: MetricsSources) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const jobLatency = new Histogram({
    name: 'esoz_job_latency_seconds',
    help: 'Time from a job being accepted (202) to its outcome, by kind and outcome',
    labelNames: ['kind', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const appendDuration = new Histogram({
    name: 'esoz_event_store_append_duration_seconds',
    help: 'Event-store append latency',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const appendConflicts = new Counter({
    name: 'esoz_event_store_concurrency_conflicts_total',
    help: 'Appends refused because the stream moved (wrong expected revision)',
    registers: [registry],
  });

  // A gauge whose store read fails leaves out its samples (and counts the failure): the rest of the
  // scrape is still answered, not a 500 for every metric because one store is down.
  const collectFailures = new Counter({
    name: 'esoz_metrics_collect_failures_total',
    help: 'Scrapes in which a gauge could not read its source (its samples were left out)',
    labelNames: ['metric'] as const,
    registers: [registry],
  });
  type GaugeOptions<L extends string> = ConstructorParameters<typeof Gauge<L>>[0];
  const gauge = <L extends string>(options: GaugeOptions<L>) => {
    const collect = options.collect;
    return new Gauge<L>({
      ...options,
      ...(collect && {
        async collect(this: Gauge<L>) {
          try {
            await collect.call(this);
          } catch {
            this.reset();
            collectFailures.inc({ metric: options.name });
          }
        },
      }),
    });
  };

  // Pending only: counting every status read the whole jobs table, which keeps every job ever accepted;
  // finished jobs are counted where they finish (esoz_job_latency_seconds_count, per outcome).
  gauge({
    name: 'esoz_jobs_pending',
    help: 'Jobs accepted and not finished yet (all processes of the installation)',
    registers: [registry],
    async collect() {
      this.set(await countPendingJobs(sources.database));
    },
  });
  gauge({
    name: 'esoz_projection_lag_events',
    help: 'Events in the store after the projection checkpoint',
    labelNames: ['projection'] as const,
    registers: [registry],
    async collect() {
      for (const runner of sources.projections()) {
        const { checkpoint } = await runner.status();
        this.set({ projection: runner.name }, await sources.eventStore.countAfter(checkpoint));
      }
    },
  });
  gauge({
    name: 'esoz_projection_lag_seconds',
    help: 'Age of the oldest event the projection has not handled yet (0 when caught up)',
    labelNames: ['projection'] as const,
    registers: [registry],
    async collect() {
      for (const runner of sources.projections()) {
        const { checkpoint } = await runner.status();
        const [next] = await sources.eventStore.readAll({ after: checkpoint, maxCount: 1 });
        this.set({ projection: runner.name }, next ? Math.max(0, (Date.now() - Date.parse(next.metadata.occurredAt)) / 1000) : 0);
      }
    },
  });
  const deadLetters = sources.deadLetters;
  if (deadLetters)
    gauge({
      name: 'esoz_projection_dead_letters',
      help: 'Events a projection could not apply (dead letters), by projection and status (halted, parked, retrying, skipped, resolved)',
      labelNames: ['projection', 'status'] as const,
      registers: [registry],
      async collect() {
        const counts = await deadLetters.counts();
        this.reset();
        for (const projection of PROJECTION_NAMES) for (const status of DEAD_LETTER_STATUSES) this.set({ projection, status }, 0);
        for (const { projection, status, count } of counts) this.set({ projection, status }, count);
      },
    });
  /** A counter whose totals are counted elsewhere (a hot path keeps plain numbers); a scrape copies them. */
  const copiedCounter = (name: string, help: string, totals: () => Record<string, number> | number) =>
    new Counter({
      name,
      help,
      labelNames: ['result'] as const,
      registers: [registry],
      collect() {
        const read = totals();
        this.reset();
        if (typeof read === 'number') this.inc(read);
        else for (const [result, count] of Object.entries(read)) this.inc({ result }, count);
      },
    });
  const aggregates = sources.aggregates;
  if (aggregates) {
    copiedCounter(
      'esoz_aggregate_cache_lookups_total',
      "Commands that looked for their stream in this process's aggregate cache, by result (hit: no read of the stream)",
      () => ({ hit: aggregates.counts.hits, miss: aggregates.counts.misses }),
    );
    copiedCounter(
      'esoz_aggregate_cache_rereads_total',
      'Commands started from a cached aggregate that ran again on the stream as read (another process wrote it, or a refusal)',
      () => aggregates.counts.rereads,
    );
  }
  const reference = sources.reference;
  if (reference) {
    copiedCounter(
      'esoz_reference_views_total',
      "Commands' reads of reference data, by result (hit: every record from this process's cache; miss: one lookup statement)",
      () => ({ hit: reference().hits, miss: reference().misses }),
    );
    copiedCounter(
      'esoz_reference_lookups_total',
      'Lookup statements of reference data (a miss, and a view read again because a change came in meanwhile)',
      () => reference().lookups,
    );
    new Gauge({
      name: 'esoz_reference_cache_entries',
      help: "Entries in this process's reference-data cache (records, not-found markers, parties' employee lists)",
      registers: [registry],
      collect() {
        this.set(reference().size);
      },
    });
  }
  // The event-manager log is the durable record of deliveries: read it, so restarts lose nothing. One
  // read per scrape for the three gauges (prom-client collects them together), of the undelivered
  // entries only: each of the three had read the whole log, which grows with the history.
  let pendingRead: Promise<PendingDelivery> | null = null;
  const pendingDelivery = () => (pendingRead ??= readPendingDelivery(sources.database).finally(() => (pendingRead = null)));
  gauge({
    name: 'esoz_status_change_events_backlog',
    help: 'StatusChangeEvents not yet delivered to the event manager',
    registers: [registry],
    async collect() {
      this.set((await pendingDelivery()).backlog);
    },
  });
  gauge({
    name: 'esoz_status_change_event_pending_attempts',
    help: 'Delivery attempts recorded on the StatusChangeEvents not yet delivered',
    registers: [registry],
    async collect() {
      this.set((await pendingDelivery()).attempts);
    },
  });
  gauge({
    name: 'esoz_status_change_event_delivery_failing',
    help: 'Undelivered StatusChangeEvents whose last attempt failed',
    registers: [registry],
    async collect() {
      this.set((await pendingDelivery()).failing);
    },
  });

  return {
    registry,
    observeHttp(method: string, route: string, status: number, seconds: number) {
      httpDuration.observe({ method, route, status: String(status) }, seconds);
    },
    /** Times each handler from the job's acceptance; an EsozError is the job's (failed) answer. */
    instrumentJobs(handlers: JobHandlers): JobHandlers {
      return Object.fromEntries(
        Object.entries(handlers).map(([kind, handler]) => [
          kind,
          async (job: Parameters<typeof handler>[0], run: Parameters<typeof handler>[1]) => {
            const since = () => Math.max(0, (Date.now() - Date.parse(job.insertedAt)) / 1000);
            try {
              const result = await handler(job, run);
              jobLatency.observe({ kind, outcome: 'processed' }, since());
              return result;
            } catch (error) {
              if (error instanceof EsozError) jobLatency.observe({ kind, outcome: 'failed' }, since());
              throw error;
            }
          },
        ]),
      );
    },
    /** The same store with timed appends (a Proxy: adapters may be class instances using `this`). */
    instrumentEventStore(store: EventStore): EventStore {
      const appendToStream: EventStore['appendToStream'] = async (...args) => {
        const stop = appendDuration.startTimer();
        try {
          return await store.appendToStream(...args);
        } catch (error) {
          if (error instanceof WrongExpectedRevisionError) appendConflicts.inc();
          throw error;
        } finally {
          stop();
        }
      };
      return new Proxy(store, {
        get(target, property, receiver) {
          if (property === 'appendToStream') return appendToStream;
          const value: unknown = Reflect.get(target, property, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    },
  };
}
