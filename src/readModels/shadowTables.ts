/**
 * Blue/green for the PostgreSQL/PGlite read-model tables: a rebuild (or verify) fills a shadow table
 * beside the live one with a projection checkpoint of its own, while the live table keeps answering
 * and the live projection keeps writing. The swap is one transaction: the live table is locked, and
 * only if the shadow has reached the live checkpoint is the live table dropped and the shadow renamed
 * into its place (indexes too), with the shadow's checkpoint becoming the live one.
 */
import type { Database, Sql } from '../database/database.js';
import type { Position } from '../eventStore/eventStore.js';
import { deleteCheckpoint, readCheckpoint } from './checkpoints.js';
import { assertIdentifier } from './postgresTables.js';

/** A rebuild's shadow is swapped in; verify's is compared with the live table and dropped. */
export type ShadowPurpose = 'rebuild' | 'verify';

export type ShadowTable = {
  /** The checkpoint name the shadow's projection writes. */
  readonly projection: string;
  /** Commands also write the live table in their append's transaction (inline projection). */
  readonly writtenInline: boolean;
  readonly table: string;
  /** Creates what a bulk load is faster without (secondary indexes, statistics); call before serving from it. */
  complete(): Promise<void>;
  /**
   * Swaps the shadow in if its checkpoint is at or past the live one and `caughtUp` (asked inside the
   * swap's transaction, under the lock) agrees; false otherwise (catch the shadow up and try again).
   */
  trySwap(comparePositions: (a: Position, b: Position) => number, caughtUp?: (sql: Sql, shadowPosition: Position | null) => Promise<boolean>): Promise<boolean>;
  /** Rows that differ between the live table and the shadow (verify), and how many ids there are. */
  differences(limit: number): Promise<{ records: number; rows: Array<{ id: string; live: unknown; shadow: unknown }> }>;
  drop(): Promise<void>;
};

export type ShadowTableSpec = {
  live: string;
  /** The live projection (its checkpoint); the shadow is `<live>__<purpose>`, its checkpoint `<projection>:<purpose>`. */
  projection: string;
  purpose: ShadowPurpose;
  /** Commands also write the live table in their append's transaction (inline projection). */
  writtenInline?: boolean;
  /** DDL of the table alone (no secondary index), for a given table name. */
  tableDdl: (table: string) => string;
  /** DDL of its secondary indexes (if any), named `<table>_…` so they can be renamed with it. */
  indexDdl?: (table: string) => string;
  /** Verify: the row as JSON for a report, and when two rows (aliases `l`ive and `s`hadow) differ. */
  comparedAs: (alias: string) => string;
  differs: string;
};

export async function createShadowTable(database: Database, spec: ShadowTableSpec): Promise<ShadowTable> {
  const { live, projection: liveProjection } = spec;
  const shadow = `${live}__${spec.purpose}`;
  const shadowProjection = `${liveProjection}:${spec.purpose}`;
  assertIdentifier(live);
  assertIdentifier(shadow);
  await database.withTransaction(async (client) => {
    await client.query(`drop table if exists ${shadow}`);
    await deleteCheckpoint(client, shadowProjection);
    await client.query(spec.tableDdl(shadow));
  });

  async function renameIndexes(client: Sql) {
    const { rows } = await client.query<{ indexname: string }>(
      `select indexname from pg_indexes where schemaname = current_schema() and tablename = $1 and indexname like $2`,
      [live, `${shadow}\\_%`],
    );
    for (const { indexname } of rows) await client.query(`alter index ${assertIdentifier(indexname)} rename to ${live}${indexname.slice(shadow.length)}`);
  }

  return {
    table: shadow,
    projection: shadowProjection,
    writtenInline: spec.writtenInline ?? false,
    async complete() {
      if (spec.indexDdl) await database.pool.query(spec.indexDdl(shadow));
      // A new table has no statistics until autovacuum's analyze (up to a minute after the swap); until
      // then the planner guesses, and a guess scanned a growing shadow whole for every lookup.
      await database.pool.query(`analyze ${shadow}`);
    },

    async trySwap(comparePositions, caughtUp) {
      return database.withTransaction(async (client) => {
        // One lock taken first, in its strongest mode: a weaker lock upgraded later could deadlock with
        // a live projection transaction that already read the table. Queries wait only for this commit.
        await client.query(`lock table ${live} in access exclusive mode`);
        const { rows } = await client.query<{ position: string }>('select position from projection_checkpoints where projection = $1 for update', [
          liveProjection,
        ]);
        const livePosition = rows[0]?.position ?? null;
        const shadowPosition = await readCheckpoint(client, shadowProjection);
        if (livePosition !== null && (shadowPosition === null || comparePositions(shadowPosition, livePosition) < 0)) return false;
        if (caughtUp && !(await caughtUp(client, shadowPosition))) return false;
        await client.query(`drop table ${live}`);
        await client.query(`alter table ${shadow} rename to ${live}`);
        await renameIndexes(client);
        await deleteCheckpoint(client, shadowProjection);
        if (shadowPosition === null) await deleteCheckpoint(client, liveProjection);
        else
          await client.query(
            `insert into projection_checkpoints (projection, position) values ($1, $2)
             on conflict (projection) do update set position = excluded.position, updated_at = now()`,
            [liveProjection, shadowPosition],
          );
        return true;
      });
    },

    async differences(limit) {
      const differs = `l.id is null or s.id is null or ${spec.differs}`;
      const { rows: counted } = await database.pool.query<{ n: string }>(`select count(*) as n from ${live} l full join ${shadow} s on l.id = s.id`);
      const { rows } = await database.pool.query<{ id: string; live: unknown; shadow: unknown }>(
        `select coalesce(l.id, s.id) as id, case when l.id is null then null else ${spec.comparedAs('l')} end as live,
                case when s.id is null then null else ${spec.comparedAs('s')} end as shadow
         from ${live} l full join ${shadow} s on l.id = s.id where ${differs} order by 1 limit $1`,
        [limit],
      );
      return { records: Number(counted[0]!.n), rows };
    },

    async drop() {
      await database.withTransaction(async (client) => {
        await client.query(`drop table if exists ${shadow}`);
        await deleteCheckpoint(client, shadowProjection);
      });
    },
  };
}
