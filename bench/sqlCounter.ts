/**
 * Counts the SQL statements a process sends (every pg client: pools, lock holders, Emmett's), and of
 * them the WAL flushes (COMMITs, and writes outside a transaction). `critical` is the share sent while
 * `inCritical()` is true (the bench server: inside an HTTP request).
 */
import pg from 'pg';

export type SqlCounts = { statements: number; flushes: number; criticalStatements: number; criticalFlushes: number };

export function countSql(inCritical: () => boolean = () => false): { read(): SqlCounts } {
  const counts: SqlCounts = { statements: 0, flushes: 0, criticalStatements: 0, criticalFlushes: 0 };
  const inTransaction = new WeakSet<object>();
  const query = pg.Client.prototype.query;
  const counting = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0];
    const whole = typeof first === 'string' ? first : ((first as { text?: string } | null)?.text ?? '');
    const text = whole.trimStart().slice(0, 12).toLowerCase();
    let flush = false;
    if (text.startsWith('begin')) inTransaction.add(this);
    else if (text.startsWith('commit') || text.startsWith('rollback')) {
      flush = text.startsWith('commit');
      inTransaction.delete(this);
    } else if (!inTransaction.has(this) && (/^(insert|update|delete)/.test(text) || (text.startsWith('with') && /\b(insert|update|delete)\b/i.test(whole))))
      // A read in a WITH (the reference lookup) writes no WAL; a data-modifying CTE does.
      flush = true;
    const critical = inCritical();
    counts.statements += 1;
    if (flush) counts.flushes += 1;
    if (critical) {
      counts.criticalStatements += 1;
      if (flush) counts.criticalFlushes += 1;
    }
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  };
  pg.Client.prototype.query = counting as typeof pg.Client.prototype.query;
  return { read: () => ({ ...counts }) };
}
