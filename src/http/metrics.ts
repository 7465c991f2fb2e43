/** GET /metrics (Prometheus text). Readers need METRICS_SCOPE in their token unless METRICS_PUBLIC=true. */
import type { Router } from 'express';
import type { Metrics } from '../observability/metrics.js';
import type { Authorize } from './app.js';

type MetricsRouteOptions = { metrics: Metrics; scope: string; isPublic: boolean };

export function registerMetricsRoute(router: Router, authorize: Authorize, { metrics, scope, isPublic }: MetricsRouteOptions): void {
  const guard = isPublic ? [] : [authorize(scope)];
  router.get('/metrics', ...guard, async (_req, res) => {
    res.set('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}
