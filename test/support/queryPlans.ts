import type { Database } from '../../src/database/database.js';

/**
 * The JSON plan of `sql` before and after `table` has statistics: a freshly loaded table has none until
 * an analyze, and the planner must pick the index both ways. Pairs of [analyzed, plan].
 */
export async function plansBeforeAndAfterAnalyze(database: Database, sql: string, table: string): Promise<Array<[boolean, string]>> {
  const plans: Array<[boolean, string]> = [];
  for (const analyzed of [false, true]) {
    if (analyzed) await database.pool.query(`analyze ${table}`);
    const { rows } = await database.pool.query<{ 'QUERY PLAN': unknown }>(`explain (format json) ${sql}`);
    plans.push([analyzed, JSON.stringify(rows[0]!['QUERY PLAN'])]);
  }
  return plans;
}
