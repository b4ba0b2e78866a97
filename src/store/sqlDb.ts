/**
 * The one port the store needs from a database: run parameterised SQL, in or out of a
 * transaction. SQL is written once with PostgreSQL placeholders ($1, $2, …); the SQLite adapter
 * rewrites them. Adapters: SQLite (file or in-memory, via better-sqlite3) and PostgreSQL (pg).
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { setImmediate as turnOfTheLoop } from 'node:timers/promises';
import { WalCheckpoints, type WalCheckpointOptions } from './walCheckpoints.ts';

export type Dialect = 'sqlite' | 'postgres';
export type Param = string | number | null;

export interface SqlDb {
  readonly dialect: Dialect;
  all<T>(sql: string, params?: readonly Param[]): Promise<T[]>;
  get<T>(sql: string, params?: readonly Param[]): Promise<T | undefined>;
  /** Runs a statement; returns the number of rows it changed. */
  run(sql: string, params?: readonly Param[]): Promise<number>;
  /** Runs a script of several statements without parameters. */
  exec(script: string): Promise<void>;
  /** Runs fn in one transaction: committed when it resolves, rolled back when it throws. */
  tx<T>(fn: (db: SqlDb) => Promise<T>, options?: TxOptions): Promise<T>;
  close(): Promise<void>;
}

export interface TxOptions {
  /**
   * Goes before every transaction and statement already waiting for SQLite's one connection
   * (still after the one that holds it). For small writes that must not wait out a queue, such
   * as node lease renewals (a 1,250-node burst queues 10 s of heartbeats). PostgreSQL runs
   * transactions side by side on its pool, so there it is a plain transaction.
   */
  readonly urgent?: boolean;
  /**
   * PostgreSQL: the commit does not wait for its log to reach the disk (`synchronous_commit =
   * off` for this transaction): a crash of PostgreSQL may lose the last few hundred ms of such
   * transactions, each whole or not at all. Only for writes the next report repeats (quiet
   * heartbeats, cumulative energy counters). SQLite already commits so (synchronous = NORMAL).
   */
  readonly asyncCommit?: boolean;
}

/** `$1`-style SQL as `?` placeholders, with the index of the parameter each `?` takes, in order. */
function questionMarks(sql: string): { text: string; order: number[] } {
  const order: number[] = [];
  const text = sql.replace(/\$(\d+)/g, (_, n: string) => {
    order.push(Number(n) - 1);
    return '?';
  });
  return { text, order };
}

/** How long statements may follow one another before the thread is let go for a turn of the event loop (ms). */
const TURN_AFTER_MS = 50;

/**
 * SQLite's one connection, one user at a time, in lanes (urgent, reads, the rest). A waiter is
 * handed the connection as its predecessor's promise resolves, in a microtask; the event loop's
 * turns come from the statements (SqliteConn).
 */
class Mutex {
  private busy = false;
  private readonly waiting: (() => void)[] = [];
  /** Waiters that go before every other (TxOptions.urgent), in their own order. */
  private readonly urgent: (() => void)[] = [];
  /** Reads outside a transaction: after the urgent, before the transactions and writes (laneOf), READS_IN_A_ROW at most while a write waits. */
  private readonly reads: (() => void)[] = [];
  private readsInARow = 0;

  async lock<T>(fn: () => Promise<T>, lane: 'urgent' | 'read' | 'write' = 'write'): Promise<T> {
    if (this.busy) await new Promise<void>((r) => (lane === 'urgent' ? this.urgent : lane === 'read' ? this.reads : this.waiting).push(r));
    else this.busy = true;
    try {
      return await fn();
    } finally {
      // A read's caller often reads again at once (a page, then its tasks; a job, then its
      // events): that read is queued in the microtasks after this one resolves, too late for a
      // hand-off now, which would give the connection to a waiting write and make each of the
      // caller's reads wait out a whole transaction (a cycle's history refresh waited 3.5 s in a
      // burst of 10,000-element POSTs). So from a read to a write the hand-off waits one turn.
      if (lane === 'read' && this.reads.length === 0 && this.urgent.length === 0 && this.waiting.length > 0 && this.readsInARow < READS_IN_A_ROW) setImmediate(this.handOff);
      else this.handOff();
    }
  }

  /** Gives the connection to the next waiter (it stays busy), or frees it. */
  private readonly handOff = (): void => {
    let next = this.urgent.shift();
    if (next === undefined) {
      const readFirst = this.reads.length > 0 && (this.waiting.length === 0 || this.readsInARow < READS_IN_A_ROW);
      // Counted only while a write waits: reads cannot keep the writes out for good.
      this.readsInARow = readFirst && this.waiting.length > 0 ? this.readsInARow + 1 : 0;
      next = readFirst ? this.reads.shift() : this.waiting.shift();
    }
    // Handed on, still busy: the next waiter runs in a microtask, as when this was a promise chain.
    if (next) next();
    else this.busy = false;
  };
}

/**
 * The connection's statements. better-sqlite3 runs them synchronously, and the connection's users
 * follow one another in microtasks: so every statement and transaction queued behind a long one
 * ran back to back without the event loop ever turning. After a plan bound 60,000 array tasks,
 * 1,250 heartbeats' transactions queued behind it ran as one 12-s block, in which no timer fired
 * and no request was read (heartbeats waited 18 s, past half the node lease where agents fence);
 * and one transaction of hundreds of statements (a 10,000-task array's insert, a 5,000-bind part
 * of a plan) held the thread 0.5-1.3 s. So once TURN_AFTER_MS have passed without a turn, the next
 * statement, in a transaction or not, waits for one (setImmediate): timers run, requests are
 * read, those answered from memory are answered, then the line goes on. A transaction still
 * holds the connection meanwhile.
 */
class SqliteConn implements SqlDb {
  readonly dialect = 'sqlite' as const;
  /** Prepared statements by their `$n` text, with the parameter order of their `?`s (worked out once, not per call). */
  private readonly cache = new Map<string, { stmt: Database.Statement; order: number[] }>();
  /** A marker is set by a statement and cleared by the event loop's next turn: while it stands, no turn has come since `markedAt`. */
  private marked = false;
  private markedAt = 0;
  private readonly clear = (): void => {
    this.marked = false;
  };
  constructor(private readonly db: Database.Database) {}

  /** Resolves at once, or after a turn of the event loop once TURN_AFTER_MS have passed without one. */
  private async turnIfDue(): Promise<void> {
    if (!this.marked) {
      this.marked = true;
      this.markedAt = performance.now();
      setImmediate(this.clear);
      return;
    }
    if (performance.now() - this.markedAt < TURN_AFTER_MS) return;
    // The marker's own setImmediate runs first and clears it; a fresh one is set by the next statement.
    await turnOfTheLoop();
  }

  private prep(sql: string, params: readonly Param[]): { stmt: Database.Statement; params: Param[] } {
    let entry = this.cache.get(sql);
    if (!entry) {
      const { text, order } = questionMarks(sql);
      entry = { stmt: this.db.prepare(text), order };
      this.cache.set(sql, entry);
    }
    const order = entry.order;
    const ordered: Param[] = new Array<Param>(order.length);
    for (let i = 0; i < order.length; i++) ordered[i] = params[order[i] as number] ?? null;
    return { stmt: entry.stmt, params: ordered };
  }
  async all<T>(sql: string, params: readonly Param[] = []): Promise<T[]> {
    await this.turnIfDue();
    const p = this.prep(sql, params);
    return p.stmt.all(...p.params) as T[];
  }
  async get<T>(sql: string, params: readonly Param[] = []): Promise<T | undefined> {
    await this.turnIfDue();
    const p = this.prep(sql, params);
    return p.stmt.reader ? (p.stmt.get(...p.params) as T | undefined) : (p.stmt.run(...p.params), undefined);
  }
  async run(sql: string, params: readonly Param[] = []): Promise<number> {
    await this.turnIfDue();
    const p = this.prep(sql, params);
    if (p.stmt.reader) return p.stmt.all(...p.params).length;
    return p.stmt.run(...p.params).changes;
  }
  async exec(script: string): Promise<void> {
    await this.turnIfDue();
    this.db.exec(script);
  }
  tx<T>(): Promise<T> {
    throw new Error('nested transactions are not supported');
  }
  async close(): Promise<void> {
    this.db.close();
  }
}

/** SQLite: `path` is a file, or ":memory:" for the in-memory store. */
export class SqliteDb implements SqlDb {
  readonly dialect = 'sqlite' as const;
  private readonly conn: SqliteConn;
  private readonly raw: Database.Database;
  private readonly mutex = new Mutex();
  /** COMMITs and the request thread's time in them (ms), for benchmarks: a checkpoint inside one is the thread's too. */
  readonly commits = { count: 0, ms: 0, maxMs: 0 };
  /** The log's checkpoints, on a thread of their own (store/walCheckpoints.ts); none for an in-memory database. */
  readonly checkpoints: WalCheckpoints | null;

  constructor(path: string, checkpointOptions: WalCheckpointOptions = {}) {
    this.raw = new Database(path);
    this.raw.pragma('journal_mode = WAL');
    this.raw.pragma('synchronous = NORMAL');
    this.raw.pragma('foreign_keys = ON');
    this.raw.pragma('busy_timeout = 5000');
    // A log restarted after a large write is cut back to this size (bytes).
    this.raw.pragma('journal_size_limit = 67108864');
    this.conn = new SqliteConn(this.raw);
    // TIDE_SQLITE_CHECKPOINT_THREAD=0 leaves checkpoints to SQLite, in COMMIT (to compare, or should the thread misbehave).
    this.checkpoints = this.raw.memory || process.env['TIDE_SQLITE_CHECKPOINT_THREAD'] === '0'
      ? null
      : new WalCheckpoints(
          path,
          (pages) => {
            if (this.raw.open) this.raw.pragma(`wal_autocheckpoint = ${pages}`);
          },
          (fn) => this.mutex.lock(fn),
          checkpointOptions,
        );
  }
  all<T>(sql: string, params?: readonly Param[]): Promise<T[]> {
    return this.mutex.lock(() => this.conn.all<T>(sql, params), laneOf(sql));
  }
  get<T>(sql: string, params?: readonly Param[]): Promise<T | undefined> {
    return this.mutex.lock(() => this.conn.get<T>(sql, params), laneOf(sql));
  }
  run(sql: string, params?: readonly Param[]): Promise<number> {
    return this.mutex.lock(() => this.conn.run(sql, params));
  }
  exec(script: string): Promise<void> {
    return this.mutex.lock(() => this.conn.exec(script));
  }
  tx<T>(fn: (db: SqlDb) => Promise<T>, options?: TxOptions): Promise<T> {
    return this.mutex.lock(async () => {
      this.raw.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this.conn);
        const began = performance.now();
        this.raw.exec('COMMIT');
        const ms = performance.now() - began;
        this.commits.count++;
        this.commits.ms += ms;
        this.commits.maxMs = Math.max(this.commits.maxMs, ms);
        this.checkpoints?.committed();
        return result;
      } catch (e) {
        this.raw.exec('ROLLBACK');
        throw e;
      }
    }, options?.urgent === true ? 'urgent' : 'write');
  }
  async close(): Promise<void> {
    await this.checkpoints?.close();
    await this.mutex.lock(async () => this.raw.close());
  }
}

/** Reads that may go ahead of a waiting write before it is let in. */
const READS_IN_A_ROW = 32;

/**
 * The line a statement outside a transaction waits in: a SELECT goes ahead of the queued
 * transactions and writes (READS_IN_A_ROW at a time, so that a stream of reads cannot keep them
 * out). In a 100,000-task burst the line held seconds of heartbeats' transactions, and a tenant's
 * GET, or /healthz, waited behind them: 535 ms on average, fresh connections to /healthz up to
 * 7-24 s. A read still runs between transactions, never during one, so it sees none half done,
 * and a caller that awaited its write reads it. (A second connection for reads was tried: in its
 * run the steady phase's reads p99 went from 42-71 ms to 95-121; a connection's page cache is
 * dropped whenever another commits, which the writer does every 100 ms or less.)
 */
function laneOf(sql: string): 'read' | 'write' {
  return SELECT.test(sql) ? 'read' : 'write';
}
/** A statement that only reads (a write that answers rows, `WITH … INSERT … RETURNING`, does not start so). */
const SELECT = /^\s*SELECT\b/i;

// BIGINT and NUMERIC come back as strings by default; every number Tide stores fits a double.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));

/**
 * Names for the statements PostgreSQL keeps prepared, per connection, by their text, so that
 * each connection parses them once, not on every call (a 100-row insert has 600 parameters), and
 * PostgreSQL may keep a generic plan after five calls (plan_cache_mode auto: planning a 192-id
 * lookup joined to nodes took 0.8 ms, its run 0.4). A text is named when it comes a second time,
 * up to MAX_PREPARED texts (a full-size benchmark runs about 420, many of them once: the odd-sized
 * last chunk of a write); the rest run unnamed, so what a connection holds stays bounded.
 */
const MAX_PREPARED = 300;
const preparedNames = new Map<string, string>();
let preparedCount = 0;
/** Texts seen once (cleared when it grows large: a text seen again after that waits one call more). */
const seenOnce = new Set<string>();
/** Texts PostgreSQL refused to run prepared again (a table of a `SELECT *` changed): always unnamed. */
const unnamed = new Set<string>();

function pgQuery(sql: string, params: readonly Param[]): pg.QueryConfig<Param[]> {
  let name = preparedNames.get(sql);
  if (name === undefined && preparedCount < MAX_PREPARED && !unnamed.has(sql)) {
    if (seenOnce.delete(sql)) preparedNames.set(sql, (name = `tide_${preparedCount++}`));
    else {
      if (seenOnce.size >= 4 * MAX_PREPARED) seenOnce.clear();
      seenOnce.add(sql);
    }
  }
  return name === undefined ? { text: sql, values: params as Param[] } : { name, text: sql, values: params as Param[] };
}

/**
 * Runs a statement, prepared where pgQuery names it. A prepared `SELECT *` fails once its table
 * gains a column (another server's migration, in a rolling upgrade): PostgreSQL says "cached plan
 * must not change result type". That text is then run unnamed from then on, and at once when it
 * ran outside a transaction.
 */
async function pgRun(client: pg.PoolClient | pg.Pool, sql: string, params: readonly Param[]): Promise<pg.QueryResult> {
  const query = pgQuery(sql, params);
  try {
    return await client.query(query);
  } catch (e) {
    if (query.name === undefined || (e as { code?: string }).code !== '0A000') throw e;
    unnamed.add(sql);
    preparedNames.delete(sql);
    // In a transaction the failure has aborted it: the caller's next one runs the text unnamed.
    if (!(client instanceof pg.Pool)) throw e;
    return client.query(sql, params as Param[]);
  }
}

class PgConn implements SqlDb {
  readonly dialect = 'postgres' as const;
  constructor(private readonly client: pg.PoolClient | pg.Pool) {}
  async all<T>(sql: string, params: readonly Param[] = []): Promise<T[]> {
    return (await pgRun(this.client, sql, params)).rows as T[];
  }
  async get<T>(sql: string, params: readonly Param[] = []): Promise<T | undefined> {
    return (await pgRun(this.client, sql, params)).rows[0] as T | undefined;
  }
  async run(sql: string, params: readonly Param[] = []): Promise<number> {
    return (await pgRun(this.client, sql, params)).rowCount ?? 0;
  }
  async exec(script: string): Promise<void> {
    await this.client.query(script);
  }
  tx<T>(): Promise<T> {
    throw new Error('nested transactions are not supported');
  }
  async close(): Promise<void> {}
}

/**
 * PostgreSQL through a pool of `poolSize` connections for transactions and writes, and one of
 * `readPoolSize` for reads outside a transaction (laneOf), the part of SQLite's read lane that
 * matters here: while PostgreSQL syncs its log, commits stall and every pooled connection can
 * wait in one, and a read that queued behind them waited with them (full-size benchmark, steady
 * phase: reads p99 155-687 ms with one pool of 8, 72-132 ms with 16). A read holds no session
 * state, so it may run on any connection.
 */
export class PostgresDb implements SqlDb {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly readPool: pg.Pool;
  private readonly direct: PgConn;
  private readonly reads: PgConn;

  constructor(url: string, poolSize = 8, readPoolSize = Math.max(1, Math.ceil(poolSize / 2))) {
    // Connections are kept once opened (node-postgres closes one idle for 10 s by default): the
    // busiest moments (a burst of submissions, an array's binds and reports) come after quiet
    // ones, and each connection reopened then cost a password exchange (SCRAM) on both sides and
    // a backend whose statements are all prepared and planned again. A full-size benchmark run
    // opened at least 21 backends for its 12 pooled connections.
    const options = { connectionString: url, connectionTimeoutMillis: 5000, idleTimeoutMillis: 0 };
    this.pool = new pg.Pool({ ...options, max: poolSize });
    this.readPool = new pg.Pool({ ...options, max: readPoolSize });
    // A dropped connection must not crash the server; the next query reconnects.
    this.pool.on('error', () => {});
    this.readPool.on('error', () => {});
    this.direct = new PgConn(this.pool);
    this.reads = new PgConn(this.readPool);
  }
  all<T>(sql: string, params?: readonly Param[]): Promise<T[]> {
    return (laneOf(sql) === 'read' ? this.reads : this.direct).all<T>(sql, params);
  }
  get<T>(sql: string, params?: readonly Param[]): Promise<T | undefined> {
    return (laneOf(sql) === 'read' ? this.reads : this.direct).get<T>(sql, params);
  }
  run(sql: string, params?: readonly Param[]): Promise<number> {
    return this.direct.run(sql, params);
  }
  exec(script: string): Promise<void> {
    return this.direct.exec(script);
  }
  async tx<T>(fn: (db: SqlDb) => Promise<T>, options?: TxOptions): Promise<T> {
    const client = await this.pool.connect();
    // A checked-out client has no pool listener: a connection dropped mid-transaction (PostgreSQL
    // restarted) would be an unhandled 'error' event that ends the server. Catch it, and drop the
    // broken client instead of returning it to the pool.
    let broken: Error | undefined;
    const onError = (e: Error): void => {
      broken = e;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      if (options?.asyncCommit === true) await client.query('SET LOCAL synchronous_commit = off');
      const result = await fn(new PgConn(client));
      await client.query('COMMIT');
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }
  async close(): Promise<void> {
    await Promise.all([this.pool.end(), this.readPool.end()]);
  }
}
