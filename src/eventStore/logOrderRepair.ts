/**
 * A log "from the future": a database restored from pg_dump, or moved by logical replication or a
 * managed service's import, into another PostgreSQL cluster keeps the old cluster's xid8 values in
 * es_events.transaction_id. When they lie at or above the new cluster's counter, the global log (read
 * only below the snapshot's xmin) shows none of those events, and every new append would sort before
 * them. The cluster's counter cannot be moved past them from SQL (it would take burning billions of
 * ids), so the log's order is re-stamped instead, at open, before anything is appended or projected:
 * every row gets the position (RESTAMPED_TRANSACTION_ID, its line in the old order). Only the order
 * keys change, never an event: content, stream, revision and hash chain stay, so do signed anchors.
 *
 * Why both columns: keeping global_position would need a distinct id below the new counter for each
 * place where global_position order disagrees with the old log order (concurrent commits), and a
 * freshly initialised cluster has used only a few hundred; one id and the line number always fit.
 */
import { z } from 'zod';
import { SQL_IDENTIFIER, type Database, type Sql } from '../database/database.js';
import type { Logger } from '../logger.js';

/** The id every re-stamped row carries: the smallest a real transaction can have, below any cluster's horizon. */
export const RESTAMPED_TRANSACTION_ID = 3n;

export type FutureLog = { newestTransactionId: bigint; clusterNextTransactionId: bigint };

const probeRow = z.object({ newest: z.string().nullable(), next: z.string() });

/**
 * The log's newest stored id and the cluster's next one, when the log holds an id this cluster has not
 * handed out yet. The snapshot's xmax (not xmin): a committed row of this cluster always lies below it,
 * while a row committed here during a long transaction can lie above xmin.
 */
export async function findLogFromTheFuture(sql: Sql): Promise<FutureLog | null> {
  // Ordered by the qualified column: the text it is selected as would sort 10000 before 9999.
  const { rows } = await sql.query(
    `select (select transaction_id::text from es_events order by es_events.transaction_id desc limit 1) as newest,
            pg_snapshot_xmax(pg_current_snapshot())::text as next`,
  );
  const { newest, next } = probeRow.parse(rows[0]);
  if (newest === null || BigInt(newest) < BigInt(next)) return null;
  return { newestTransactionId: BigInt(newest), clusterNextTransactionId: BigInt(next) };
}

export type LogOrderRepair = FutureLog & {
  events: number;
  /** Stored positions moved with the log, per table (projection checkpoints, the anchorer's state…). */
  positions: Record<string, number>;
  /** Stored positions past the log's last event, left as they were so the checkpoint check still refuses them. */
  beyondLog: Record<string, number>;
};

const positionTable = z.object({ table_name: z.string() });
const storedPosition = z.object({ row: z.string(), position: z.string() });
const lineRow = z.object({ line: z.string(), within: z.boolean() });

/**
 * Re-stamps a log from the future (see above) in one transaction; null when the log is this cluster's.
 * Runs under an advisory lock with appenders kept out, and checks again inside it: of two processes
 * opening the store at once, one repairs and the other finds nothing to do.
 */
export async function repairLogOrder(database: Database, logger?: Logger): Promise<LogOrderRepair | null> {
  if (!(await findLogFromTheFuture(database.pool))) return null;
  const repair = await database.withTransaction(async (client) => {
    await client.query(`select pg_advisory_xact_lock(hashtextextended(current_schema() || '/migrate:log_order', 0))`);
    // Appenders take es_streams first and wait; readers go on (they see the old order until commit).
    await client.query('lock table es_streams, es_events in exclusive mode');
    const future = await findLogFromTheFuture(client);
    if (!future) return null;
    const { positions, beyondLog } = await movePositions(client);
    const { rowCount } = await client.query(
      `update es_events e set transaction_id = $1::text::xid8, global_position = o.line
       from (select stream_name, revision, row_number() over (order by transaction_id, global_position) as line from es_events) o
       where e.stream_name = o.stream_name and e.revision = o.revision`,
      [String(RESTAMPED_TRANSACTION_ID)],
    );
    return { ...future, events: rowCount ?? 0, positions, beyondLog };
  });
  if (repair)
    logger?.warn(
      {
        migration: 'log_order',
        events: repair.events,
        newestStoredTransactionId: String(repair.newestTransactionId),
        clusterNextTransactionId: String(repair.clusterNextTransactionId),
        positions: repair.positions,
        beyondLog: repair.beyondLog,
      },
      `log order repair: the event log holds transaction ids this PostgreSQL cluster has not reached ` +
        `(restored or moved from another cluster); re-stamped the order of ${repair.events} event(s) below the cluster's horizon, no event changed`,
    );
  return repair;
}

/**
 * Every stored log position of this schema (a text column named `position` holding `<xid>:<n>`:
 * projection checkpoints, the anchorer's state, and any table added later that follows the name), moved
 * to the re-stamped log: `<RESTAMPED>:<count of events at or before it>`, computed before the log is
 * rewritten. Found by name so a new table of positions cannot be forgotten here.
 */
async function movePositions(client: Sql): Promise<{ positions: Record<string, number>; beyondLog: Record<string, number> }> {
  const positions: Record<string, number> = {};
  const beyondLog: Record<string, number> = {};
  const { rows: tables } = await client.query(
    `select table_name from information_schema.columns
     where table_schema = current_schema() and column_name = 'position' and data_type = 'text' and table_name <> 'es_events'
     order by table_name`,
  );
  // Only plain names (ours all are), so the name can go into the statements as it is.
  const names = tables.map((row) => positionTable.parse(row).table_name).filter((name) => SQL_IDENTIFIER.test(name));
  for (const table of names) {
    const { rows } = await client.query(`select ctid::text as row, position from ${table} where position ~ '^[0-9]+:[0-9]+$'`);
    for (const { row, position } of rows.map((r) => storedPosition.parse(r))) {
      const [xid, globalPosition] = position.split(':');
      const { rows: lines } = await client.query(
        `select (select count(*) from es_events where (transaction_id, global_position) <= ($1::text::xid8, $2::bigint))::text as line,
                exists (select 1 from es_events where (transaction_id, global_position) >= ($1::text::xid8, $2::bigint)) as within`,
        [xid, globalPosition],
      );
      const { line, within } = lineRow.parse(lines[0]);
      if (!within) {
        beyondLog[table] = (beyondLog[table] ?? 0) + 1;
        continue;
      }
      await client.query(`update ${table} set position = $1 where ctid = $2::tid`, [`${RESTAMPED_TRANSACTION_ID}:${line}`, row]);
      positions[table] = (positions[table] ?? 0) + 1;
    }
  }
  return { positions, beyondLog };
}
