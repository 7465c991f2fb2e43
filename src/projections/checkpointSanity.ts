/**
 * Start-up sanity of projection checkpoints. Checkpoints live beside the read models, not in the event
 * store: if the event store is wiped or the app is pointed at another one, a stored checkpoint can lie
 * past the head of the new log, and following the log from there would silently skip every new event
 * up to it (jobs "processed", GET 404). Such a checkpoint is refused with an error naming the
 * projection, or (ON_CHECKPOINT_AHEAD=rebuild) the projection is reset and replays the log from zero.
 */
import type { EventStore, Position } from '../eventStore/eventStore.js';
import type { Logger } from '../logger.js';
import type { Projection } from './projection.js';

export class CheckpointAheadError extends Error {
  constructor(
    readonly projection: string,
    readonly checkpoint: Position,
    readonly head: Position | null,
  ) {
    super(
      `Projection ${projection}: its stored checkpoint ${checkpoint} lies beyond the head of the event log (${head ?? 'empty log'}); ` +
        'the event store was wiped or replaced while the read models were kept. Following the log from there would skip events: ' +
        'rebuild the projections (npm run cli -- rebuild all) or start with ON_CHECKPOINT_AHEAD=rebuild',
    );
    this.name = 'CheckpointAheadError';
  }
}

/** Throws CheckpointAheadError when `checkpoint` lies past the log's head (an empty log has no head). */
export async function assertCheckpointNotAhead(store: EventStore, projection: string, checkpoint: Position | null): Promise<void> {
  if (checkpoint === null) return;
  const head = await store.headPosition();
  if (head === null || store.comparePositions(checkpoint, head) > 0) throw new CheckpointAheadError(projection, checkpoint, head);
}

/** Checks every projection before anything is appended or projected; 'rebuild' resets the ones that are ahead. */
export async function checkCheckpoints(
  store: EventStore,
  projections: Array<Pick<Projection, 'name' | 'readCheckpoint' | 'reset'>>,
  mode: 'fail' | 'rebuild',
  logger: Logger,
): Promise<void> {
  for (const projection of projections) {
    try {
      await assertCheckpointNotAhead(store, projection.name, await projection.readCheckpoint());
    } catch (error) {
      if (!(error instanceof CheckpointAheadError) || mode === 'fail') throw error;
      logger.warn(
        { projection: projection.name, checkpoint: error.checkpoint, head: error.head },
        'checkpoint beyond the head of the event log; rebuilding the projection from zero (ON_CHECKPOINT_AHEAD=rebuild)',
      );
      await projection.reset();
    }
  }
}
