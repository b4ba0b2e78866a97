/**
 * Counts what the store asks of its database: statements, rows they returned or changed, and
 * transactions, per SQL text. Counts do not depend on how loaded the machine is, so a benchmark
 * on a shared machine compares them before and after a change (queries per heartbeat, rows read
 * per cycle). The cost is a map lookup per statement; times include any wait for SQLite's one
 * connection outside a transaction.
 */
import type { Param, SqlDb, TxOptions } from './sqlDb.ts';

export interface SqlCount {
  statements: number;
  rows: number;
  ms: number;
}

export class SqlStats {
  transactions = 0;
  readonly bySql = new Map<string, SqlCount>();

  record(sql: string, rows: number, ms: number): void {
    let c = this.bySql.get(sql);
    if (!c) this.bySql.set(sql, (c = { statements: 0, rows: 0, ms: 0 }));
    c.statements++;
    c.rows += rows;
    c.ms += ms;
  }

  /** Totals over every statement. */
  totals(): { transactions: number; statements: number; rows: number } {
    let statements = 0;
    let rows = 0;
    for (const c of this.bySql.values()) {
      statements += c.statements;
      rows += c.rows;
    }
    return { transactions: this.transactions, statements, rows };
  }

  /** The `n` statements that took longest in all, their SQL shortened to its first 100 characters. */
  top(n: number): { sql: string; statements: number; rows: number; ms: number }[] {
    return [...this.bySql]
      .sort((a, b) => b[1].ms - a[1].ms)
      .slice(0, n)
      .map(([sql, c]) => ({ sql: sql.replace(/\s+/g, ' ').slice(0, 100), statements: c.statements, rows: c.rows, ms: Math.round(c.ms) }));
  }

  reset(): void {
    this.transactions = 0;
    this.bySql.clear();
  }
}

/** The database, counting into `stats` (statements inside a transaction included). */
export function countingDb(db: SqlDb, stats: SqlStats): SqlDb {
  const timed = async <T>(sql: string, run: () => Promise<T>, rowsOf: (r: T) => number): Promise<T> => {
    const t = performance.now();
    const r = await run();
    stats.record(sql, rowsOf(r), performance.now() - t);
    return r;
  };
  return {
    dialect: db.dialect,
    all: <T>(sql: string, params?: readonly Param[]) => timed(sql, () => db.all<T>(sql, params), (r) => r.length),
    get: <T>(sql: string, params?: readonly Param[]) => timed(sql, () => db.get<T>(sql, params), (r) => (r === undefined ? 0 : 1)),
    run: (sql: string, params?: readonly Param[]) => timed(sql, () => db.run(sql, params), (n) => n),
    exec: (script: string) => timed(script, () => db.exec(script), () => 0),
    tx: <T>(fn: (inner: SqlDb) => Promise<T>, options?: TxOptions) => {
      stats.transactions++;
      return db.tx((inner) => fn(countingDb(inner, stats)), options);
    },
    close: () => db.close(),
  };
}
