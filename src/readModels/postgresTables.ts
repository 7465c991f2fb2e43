/** What the PostgreSQL read-model tables share: safe table names, id-ordered scans, reset. */
import { SQL_IDENTIFIER, type Database } from '../database/database.js';
import { deleteCheckpoint } from './checkpoints.js';

/** Table names are interpolated into SQL: only plain lower-case identifiers pass. */
export function assertIdentifier(name: string, what = 'table name'): string {
  if (!SQL_IDENTIFIER.test(name)) throw new Error(`Invalid ${what}: ${name}`);
  return name;
}

/** Every row of `table` in id order, fetched in bounded pages. */
export async function* scanById<Row extends { id: string }>(database: Database, table: string, columns: string, pageSize = 500): AsyncGenerator<Row> {
  let after = '';
  for (;;) {
    const { rows } = await database.pool.query<Row>(`select ${columns} from ${table} where id collate "C" > $1 order by id collate "C" limit $2`, [
      after,
      pageSize,
    ]);
    yield* rows;
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1]!.id;
  }
}

/** Empties a read model and forgets its projection's checkpoint, together. */
export async function resetTable(database: Database, table: string, projection: string): Promise<void> {
  await database.withTransaction(async (client) => {
    await client.query(`delete from ${table}`);
    await deleteCheckpoint(client, projection);
  });
}
