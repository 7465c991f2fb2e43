/** Each projection's checkpoint and how many events it is behind the head of the store. */
import type { EventStore } from '../eventStore/eventStore.js';
import type { ProjectionRunner } from '../projections/projectionRunner.js';

export async function projectionsHealth(store: EventStore, runners: ProjectionRunner[]) {
  const head = await store.headPosition();
  return Promise.all(
    runners.map(async (runner) => {
      const { name, active, checkpoint, halted } = await runner.status();
      // `halted`: where this process's runner waits at a poison event (null: not halted here).
      return { name, active_here: active, checkpoint, head, lag: await store.countAfter(checkpoint), halted };
    }),
  );
}
