/**
 * Moves a database's transaction counter (xid8) to just below the next power of ten, so a test can
 * make transactions straddle a decimal-digit boundary: where a text-ordered log would put 10000
 * before 9999. Ids are burnt by committing empty transactions inside one DO block (fast: ~100k/s).
 */
import type { Database } from '../../src/database/database.js';

/** How many ids a test may burn on a shared server to reach a boundary (~10 s); a server already past
 * 10^6 has its next boundary out of reach, and the tests say so with a `skipped:` line. */
export const XID_BUDGET = 1_500_000n;

export async function currentTransactionId(database: Database): Promise<bigint> {
  const { rows } = await database.pool.query<{ xid: string }>('select pg_current_xact_id()::text as xid');
  return BigInt(rows[0]!.xid);
}

/** The next power of ten at least `margin` ids ahead of the counter. */
export async function nextDigitBoundary(database: Database, margin = 100n): Promise<bigint> {
  const now = await currentTransactionId(database);
  let boundary = 10n;
  while (boundary - now < margin) boundary *= 10n;
  return boundary;
}

/** Burns ids until the counter stands `below` ids short of `boundary`. */
export async function burnTransactionIdsTo(database: Database, boundary: bigint, below: bigint): Promise<void> {
  const target = boundary - below;
  for (;;) {
    const now = await currentTransactionId(database);
    if (now >= target) return;
    const n = Number(target - now - 1n);
    if (n <= 0) continue;
    // Each loop turn commits its own transaction (procedural COMMIT in a top-level DO block).
    await database.pool.query(`do $$ begin for i in 1..${Math.min(n, 1_000_000)} loop perform pg_current_xact_id(); commit; end loop; end $$`);
  }
}
