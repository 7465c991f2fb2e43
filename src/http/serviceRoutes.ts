/** The routes that describe and watch the service rather than serve the ЕСОЗ API. */
import type { Router } from 'express';
import type { Config } from '../config.js';
import type { Metrics } from '../observability/metrics.js';
import { packageInfo } from '../observability/packageInfo.js';
import type { Authorize } from './app.js';
import { registerDocsRoutes } from './docs.js';
import { registerHealthRoutes, type HealthDeps } from './health.js';
import { registerHomeRoute } from './home.js';
import { registerMetricsRoute } from './metrics.js';

type ServiceRouteOptions = { health: HealthDeps; metrics: Metrics; config: Config; publicUrl: () => string };

export function registerServiceRoutes(router: Router, authorize: Authorize, { health, metrics, config, publicUrl }: ServiceRouteOptions): void {
  registerHomeRoute(router, packageInfo);
  registerHealthRoutes(router, health);
  registerMetricsRoute(router, authorize, { metrics, scope: config.METRICS_SCOPE, isPublic: config.METRICS_PUBLIC });
  registerDocsRoutes(router, { publicUrl, metricsScope: config.METRICS_SCOPE });
}
