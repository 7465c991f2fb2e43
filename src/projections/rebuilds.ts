/**
 * Server-side rebuilds (POST /api/admin/projections/{name}/rebuild): a blue/green rebuild run in the
 * background of the serving process, while the live read models keep answering and the live
 * projections keep writing. On PGlite this is the only way to rebuild without stopping the server
 * (one process owns its data). A projection without a shadow (the MongoDB read model) is refused: it
 * can only be rebuilt in place, with the server stopped (CLI).
 */
import type { Database } from '../database/database.js';
import { conflict } from '../domain/shared/esozError.js';
import type { EventStore } from '../eventStore/eventStore.js';
import type { Logger } from '../logger.js';
import type { Projection } from './projection.js';
import { rebuildProjections } from './replay.js';

export type RebuildState = {
  status: 'running' | 'done' | 'failed';
  started_at: string;
  finished_at: string | null;
  events: number | null;
  error: string | null;
};

export type Rebuilds = {
  /** Starts rebuilding `projections` together; 409 when one of them is being rebuilt here or cannot be beside the live one. */
  start(projections: Projection[]): RebuildState;
  /** The last rebuild of a projection started by this process, if any. */
  stateOf(name: string): RebuildState | null;
  /** Resolves when no rebuild started here is running (shutdown, tests). */
  idle(): Promise<void>;
};

export function createRebuilds({
  eventStore,
  database,
  logger,
  clock,
}: {
  eventStore: EventStore;
  database: Database;
  logger: Logger;
  clock: () => Date;
}): Rebuilds {
  const states = new Map<string, RebuildState>();
  const running = new Set<Promise<void>>();
  return {
    start(projections) {
      for (const projection of projections) {
        if (!projection.shadow) throw conflict(`Projection ${projection.name} can only be rebuilt with the server stopped (npm run cli -- rebuild)`);
        if (states.get(projection.name)?.status === 'running') throw conflict(`Projection ${projection.name} is being rebuilt`);
      }
      const state: RebuildState = { status: 'running', started_at: clock().toISOString(), finished_at: null, events: null, error: null };
      for (const projection of projections) states.set(projection.name, state);
      const names = projections.map((p) => p.name);
      logger.info({ projections: names }, 'rebuild started beside the live read models');
      const run = rebuildProjections(eventStore, database, projections).then(
        (events) => {
          Object.assign(state, { status: 'done', finished_at: clock().toISOString(), events });
          logger.info({ projections: names, events }, 'rebuild swapped in');
        },
        (error: unknown) => {
          Object.assign(state, { status: 'failed', finished_at: clock().toISOString(), error: error instanceof Error ? error.message : String(error) });
          logger.error({ err: error, projections: names }, 'rebuild failed; the live read models are unchanged');
        },
      );
      running.add(run);
      void run.finally(() => running.delete(run));
      return state;
    },
    stateOf: (name) => states.get(name) ?? null,
    async idle() {
      await Promise.all(running);
    },
  };
}
