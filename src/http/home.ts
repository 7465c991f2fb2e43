/** GET /: what this is and where to look next (no token, nothing sensitive). */
import type { Router } from 'express';

export function registerHomeRoute(router: Router, { name, version }: { name: string; version: string }): void {
  router.get('/', (_req, res) => {
    res.json({
      name,
      version,
      links: { docs: '/docs', openapi: '/api/openapi.json', health: '/health/ready', liveness: '/health/live', metrics: '/metrics' },
    });
  });
}
