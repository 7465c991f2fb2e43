/**
 * GET /health/live (the process serves) and GET /health/ready (stores reachable, projections running,
 * their lag, and `degraded`: the parts that work less than fully, src/observability/degradations.ts).
 * No token: load balancers and orchestrators call them. Only names, states, ids and counts — no URLs, hosts or error texts (those go to the log).
 */
import type { Router } from 'express';
import type { Database } from '../database/database.js';
import type { EventStore } from '../eventStore/eventStore.js';
import type { Logger } from '../logger.js';
import type { ProjectionRunner } from '../projections/projectionRunner.js';
import type { DeviceDispenseStore } from '../readModels/deviceDispenseStore.js';
import type { LicenseStore } from '../readModels/licenseStore.js';
import type { Degradation, Degradations } from '../observability/degradations.js';

export type HealthDeps = {
  database: Database;
  eventStore: EventStore;
  deviceDispenses: DeviceDispenseStore;
  licenses: LicenseStore;
  projections: () => ProjectionRunner[];
  /** Background work running (false in HTTP-only test servers and after shutdown began). */
  running: () => boolean;
  /** Parts working less than fully: listed under `degraded`, the answer still 200. */
  degradations?: Degradations;
  logger: Logger;
};

const CHECK_TIMEOUT_MS = 2_000;

/** A check that hangs (a half-open connection) counts as failed after a bounded time. */
const within = <T>(work: Promise<T>): Promise<T> =>
  Promise.race([work, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), CHECK_TIMEOUT_MS).unref())]);

export function registerHealthRoutes(router: Router, deps: HealthDeps): void {
  router.get('/health/live', (_req, res) => {
    res.set('cache-control', 'no-store').json({ status: 'ok' });
  });

  // Logged once per change of state, not per probe: an outage probed every second would flood the log.
  let wasReady = true;
  const logChange = (ready: boolean, failing: string[], reasons: Record<string, string>) => {
    if (ready === wasReady) return;
    wasReady = ready;
    if (ready) deps.logger.info('ready again');
    else deps.logger.warn({ failing, reasons }, `not ready: ${failing.join(', ')}`);
  };

  router.get('/health/ready', async (_req, res) => {
    const checks: Record<string, 'ok' | 'unreachable'> = {};
    const failing: string[] = [];
    const reasons: Record<string, string> = {};
    const check = async (name: string, work: () => Promise<unknown>) => {
      try {
        await within(work());
        checks[name] = 'ok';
      } catch (error) {
        checks[name] = 'unreachable';
        failing.push(name);
        reasons[name] = error instanceof Error ? error.message : String(error);
      }
    };
    await Promise.all([
      check('event_store', () => deps.eventStore.headPosition()),
      check('database', () => deps.database.pool.query('select 1')),
      check('device_dispenses_read_model', () => deps.deviceDispenses.readCheckpoint('device_dispenses')),
      check('licenses_read_model', () => deps.licenses.readCheckpoint('licenses')),
    ]);
    const running = deps.running();
    if (!running) failing.push('projections');
    const projections = await Promise.all(
      deps.projections().map(async (runner) => {
        try {
          const { active, checkpoint } = await within(runner.status());
          return { name: runner.name, running, active_here: active, lag_events: await within(deps.eventStore.countAfter(checkpoint)) };
        } catch {
          if (!failing.includes(`projection ${runner.name}`)) failing.push(`projection ${runner.name}`);
          return { name: runner.name, running, active_here: false, lag_events: null };
        }
      }),
    );
    const degraded: Degradation[] = (await deps.degradations?.collect()) ?? [];
    // 503 only when a store is unreachable (or the server is stopping): a degraded part still serves.
    const ready = failing.length === 0;
    // Background work not running (stopping, or an HTTP-only server) is no outage to report.
    const broken = failing.filter((name) => name !== 'projections');
    logChange(broken.length === 0, broken, reasons);
    res
      .status(ready ? 200 : 503)
      .set('cache-control', 'no-store')
      .json({ status: ready ? 'ready' : 'not_ready', ...(ready ? {} : { failing }), degraded, checks, projections });
  });
}
