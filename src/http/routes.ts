/** Every endpoint, wired to its command or query. */
import type { Router } from 'express';
import { getJob } from '../queries/getJob.js';
import type { Context } from '../server.js';
import { pathParam, principalOf, type Authorize } from './app.js';
import { sendData } from './envelope.js';

export type RouteDeps = { context: Context; enqueued: () => void };

export function registerRoutes(router: Router, authorize: Authorize, { context }: RouteDeps): void {
  router.get('/api/jobs/:id', authorize(null), async (req, res) => {
    const answer = await getJob(context.jobs, pathParam(req, 'id'), principalOf(res).clientId);
    sendData(req, res, answer.code, answer.data);
  });
}
