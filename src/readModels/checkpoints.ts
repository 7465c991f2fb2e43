/**
 * Projection checkpoints. Below the read models (every adapter moves one with its writes), kept in
 * PostgreSQL/PGlite by the SQL adapters, written in the same transaction as the read-model
 * rows they cover (exactly once). The write is a compare-and-set on the previous value, so a second
 * instance, or a rebuild running beside us, can never silently move a checkpoint backwards.
 */
import type { Sql } from '../database/database.js';
import type { Position } from '../eventStore/eventStore.js';

/** A batch moves its projection's checkpoint from where it started to where it ends. */
export type CheckpointUpdate = { projection: string; from: Position | null; to: Position };

/** Thrown when the stored checkpoint is not the one the batch started from (another instance moved it). */
export class CheckpointMismatchError extends Error {
  constructor(readonly projection: string) {
    super(`Checkpoint of ${projection} moved under us`);
    this.name = 'CheckpointMismatchError';
  }
}

export const checkpointsSchema = `
create table if not exists projection_checkpoints (
  projection text primary key,
  position text not null,
  updated_at timestamptz not null default now()
);`;

export async function readCheckpoint(sql: Sql, projection: string): Promise<Position | null> {
  const { rows } = await sql.query<{ position: string }>('select position from projection_checkpoints where projection = $1', [projection]);
  return rows[0]?.position ?? null;
}

export async function storeCheckpoint(sql: Sql, update: CheckpointUpdate): Promise<void> {
  const { text, values } = checkpointWrite(update);
  const { rowCount } = await sql.query(text, values);
  await checkpointStored(sql, update, rowCount ?? 0);
}

/** The compare-and-set as a write to send with others (one statement); it returns the row it moved. */
export const checkpointWrite = ({ projection, from, to }: CheckpointUpdate): { text: string; values: unknown[] } =>
  from === null
    ? { text: 'insert into projection_checkpoints (projection, position) values ($1, $2) on conflict do nothing returning 1', values: [projection, to] }
    : {
        text: 'update projection_checkpoints set position = $3, updated_at = now() where projection = $1 and position = $2 returning 1',
        values: [projection, from, to],
      };

/** After `checkpointWrite` moved `moved` rows: fine when it moved one or the checkpoint already is `to`. */
export async function checkpointStored(sql: Sql, { projection, to }: CheckpointUpdate, moved: number): Promise<void> {
  if (moved === 1) return;
  const stored = await readCheckpoint(sql, projection);
  if (stored !== to) throw new CheckpointMismatchError(projection);
}

export async function deleteCheckpoint(sql: Sql, projection: string): Promise<void> {
  await sql.query('delete from projection_checkpoints where projection = $1', [projection]);
}
