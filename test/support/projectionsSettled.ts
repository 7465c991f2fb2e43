/**
 * Waits until every live projection has stored a checkpoint at the head of the log. Rows written inline
 * with their events are visible before that, and a projection keeps a checkpoint that only passed
 * events of others (or rows already written inline) in memory until the log goes quiet; verify
 * replays up to the stored checkpoint, so it compares a settled server.
 */
import { readCheckpoint } from '../../src/readModels/checkpoints.js';
import { PROJECTION_NAMES } from '../../src/projections/registry.js';
import { eventually } from './events.js';
import type { TestServer } from './testServer.js';

export async function projectionsSettled(t: TestServer, timeoutMs = 30_000): Promise<void> {
  const { eventStore, database } = t.server.context;
  await eventually(
    async () => {
      const head = await eventStore.headPosition();
      const stored = await Promise.all(PROJECTION_NAMES.map((name) => readCheckpoint(database.pool, name)));
      return stored.every((position) => position === head);
    },
    timeoutMs,
    'every projection checkpoint stored at the head of the log',
  );
}
