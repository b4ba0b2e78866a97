import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PostgresDb, SqliteDb, type SqlDb } from './sqlDb.ts';
import { freshPostgresUrl, postgresSkipReason } from './testing.ts';

describe('SQLite connection', () => {
  it('lets the event loop turn while transactions queue behind one another', async () => {
    const db = new SqliteDb(':memory:');
    try {
      await db.run('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
      let done = 0;
      let doneWhenTimerFired = -1;
      // 200 transactions of ~2 ms each queue at once (as heartbeats behind a long plan do).
      const all = Array.from({ length: 200 }, (_, i) =>
        db.tx(async (tx) => {
          const until = performance.now() + 2;
          while (performance.now() < until) {
            /* a synchronous statement's time */
          }
          await tx.run('INSERT INTO t (id, v) VALUES ($1, $2)', [i, 'x']);
          done++;
        }),
      );
      setTimeout(() => (doneWhenTimerFired = done), 0);
      await Promise.all(all);
      assert.equal(done, 200);
      assert.ok(doneWhenTimerFired >= 0 && doneWhenTimerFired < 100, `a timer due at once fired after ${doneWhenTimerFired} of 200 transactions (~400 ms of them)`);
      assert.equal((await db.all<{ n: number }>('SELECT COUNT(*) AS n FROM t'))[0]?.n, 200, 'every transaction ran, in turn');
    } finally {
      await db.close();
    }
  });

  it('runs a read after the transaction holding the connection, ahead of the writes queued: it sees none half done', async () => {
    const db = new SqliteDb(':memory:');
    try {
      await db.run('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
      await db.run("INSERT INTO t (id, v) VALUES (1, 'committed')");
      let release!: () => void;
      const holding = db.tx(async (tx) => {
        await tx.run("INSERT INTO t (id, v) VALUES (2, 'half')");
        await new Promise<void>((r) => (release = r));
        await tx.run("INSERT INTO t (id, v) VALUES (3, 'other half')");
      });
      const queued = [db.tx((tx) => tx.run("INSERT INTO t (id, v) VALUES (4, 'queued')")), db.run("INSERT INTO t (id, v) VALUES (5, 'statement')")];
      // A write that answers rows is no read: it waits in the line of writes.
      const returning = db.all<{ id: number }>("WITH v(x) AS (VALUES ('w')) INSERT INTO t (id, v) SELECT 6, x FROM v RETURNING id");
      let readDone = false;
      const read = db.all<{ id: number }>('SELECT id FROM t ORDER BY id').then((rows) => ((readDone = true), rows));
      await new Promise((r) => setImmediate(r));
      assert.equal(readDone, false, 'not while a transaction holds the connection');
      release();
      assert.deepEqual((await read).map((r) => r.id), [1, 2, 3], 'the whole transaction, none of the writes queued before the read');
      await Promise.all([holding, ...queued]);
      assert.deepEqual(await returning, [{ id: 6 }]);
      assert.deepEqual((await db.all<{ id: number }>('SELECT id FROM t ORDER BY id')).map((r) => r.id), [1, 2, 3, 4, 5, 6]);
    } finally {
      await db.close();
    }
  });

  it("lets a reader's next read, asked for as its last one answers, in before a waiting write", async () => {
    const db = new SqliteDb(':memory:');
    try {
      await db.run('CREATE TABLE t (id INTEGER PRIMARY KEY)');
      let release: (() => void) | undefined;
      const holding = db.tx(async (tx) => {
        await tx.run('INSERT INTO t (id) VALUES (1)');
        await new Promise<void>((r) => (release = r));
      });
      const order: string[] = [];
      const write = db.tx(async (tx) => {
        await tx.run('INSERT INTO t (id) VALUES (2)');
        order.push('write');
      });
      // A page and then what it needs, as a store method reads: the second read is asked for only once the first answers.
      const reader = (async () => {
        const first = await db.all<{ id: number }>('SELECT id FROM t ORDER BY id');
        order.push(`read ${first.length}`);
        const second = await db.all<{ id: number }>('SELECT id FROM t ORDER BY id');
        order.push(`read ${second.length}`);
      })();
      while (release === undefined) await new Promise((r) => setImmediate(r));
      release();
      await Promise.all([holding, write, reader]);
      assert.deepEqual(order, ['read 1', 'read 1', 'write'], 'the second read did not wait out the write');
    } finally {
      await db.close();
    }
  });

  it('lets a waiting write in after 32 reads that went ahead of it', async () => {
    const db = new SqliteDb(':memory:');
    try {
      await db.run('CREATE TABLE t (id INTEGER PRIMARY KEY)');
      let release!: () => void;
      const holding = db.tx(() => new Promise<void>((r) => (release = r)));
      const write = db.run('INSERT INTO t (id) VALUES (1)');
      const seen = Array.from({ length: 100 }, () => db.all<{ id: number }>('SELECT id FROM t'));
      await new Promise((r) => setImmediate(r));
      release();
      await Promise.all([holding, write]);
      const counts = (await Promise.all(seen)).map((rows) => rows.length);
      assert.deepEqual(counts, [...Array<number>(32).fill(0), ...Array<number>(68).fill(1)], '32 reads before the write, the rest after it');
    } finally {
      await db.close();
    }
  });

  it('lets the event loop turn between the statements of one long transaction, which stays whole', async () => {
    const db = new SqliteDb(':memory:');
    try {
      await db.run('CREATE TABLE t (id INTEGER PRIMARY KEY)');
      let written = 0;
      let writtenWhenTimerFired = -1;
      // One transaction of 300 statements of ~1 ms each (an array's insert, a plan's part).
      const long = db.tx(async (tx) => {
        for (let i = 0; i < 300; i++) {
          const until = performance.now() + 1;
          while (performance.now() < until) {
            /* a statement's time */
          }
          await tx.run('INSERT INTO t (id) VALUES ($1)', [i]);
          written++;
        }
        throw new Error('undone');
      });
      setTimeout(() => (writtenWhenTimerFired = written), 0);
      await assert.rejects(long, /undone/);
      assert.ok(writtenWhenTimerFired >= 0 && writtenWhenTimerFired < 150, `a timer due at once fired after ${writtenWhenTimerFired} of 300 statements`);
      assert.equal((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM t'))?.n, 0, 'the transaction was rolled back whole');
    } finally {
      await db.close();
    }
  });

  it('runs an urgent transaction after the one holding the connection, ahead of those queued', async () => {
    const db = new SqliteDb(':memory:');
    try {
      await db.run('CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT)');
      const order = (who: string) => (tx: Parameters<Parameters<SqliteDb['tx']>[0]>[0]) => tx.run('INSERT INTO t (who) VALUES ($1)', [who]);
      let release!: () => void;
      const holding = db.tx(async (tx) => {
        await order('holder')(tx);
        await new Promise<void>((r) => (release = r));
      });
      const queued = Array.from({ length: 5 }, (_, i) => db.tx(order(`queued-${i}`)));
      const statement = db.run("INSERT INTO t (who) VALUES ('statement')");
      const urgent = [db.tx(order('urgent-0'), { urgent: true }), db.tx(order('urgent-1'), { urgent: true })];
      const later = db.tx(order('later'));
      await new Promise((r) => setImmediate(r));
      release();
      await Promise.all([holding, ...queued, statement, ...urgent, later]);
      const rows = await db.all<{ who: string }>('SELECT who FROM t ORDER BY seq');
      assert.deepEqual(
        rows.map((r) => r.who),
        ['holder', 'urgent-0', 'urgent-1', 'queued-0', 'queued-1', 'queued-2', 'queued-3', 'queued-4', 'statement', 'later'],
      );
    } finally {
      await db.close();
    }
  });
});

describe('PostgreSQL connections', { skip: postgresSkipReason() }, () => {
  it('keep the statements they run prepared, once per connection', async () => {
    const { url, drop } = await freshPostgresUrl(process.env['TIDE_TEST_DATABASE_URL'] as string);
    const db = new PostgresDb(url, 2);
    try {
      await db.run('CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)');
      const text = 'SELECT v FROM t WHERE id IN ($1, $2)';
      const seen = await db.tx(async (tx) => {
        await tx.run('INSERT INTO t (id, v) VALUES ($1, $2), ($3, $4)', [1, 'a', 2, 'b']);
        const rows = await tx.all<{ v: string }>(text, [1, 2]);
        assert.equal((await tx.all('SELECT name FROM pg_prepared_statements')).length, 0, 'a text run once is not kept');
        assert.deepEqual(rows.map((r) => r.v).sort(), ['a', 'b']);
        assert.deepEqual(await tx.all<{ v: string }>(text, [2, 3]), [{ v: 'b' }], 'the same statement again, other parameters');
        await tx.all(text, [1, 3]);
        const prepared = await tx.all<{ statement: string }>('SELECT statement FROM pg_prepared_statements');
        return { prepared: prepared.map((p) => p.statement) };
      });
      assert.ok(seen.prepared.includes(text), `prepared on this connection: ${seen.prepared.join(' | ')}`);
      assert.equal(seen.prepared.filter((s) => s === text).length, 1, 'prepared once, not per call');
    } finally {
      await db.close();
      await drop();
    }
  });

  it("stay open through a quiet spell longer than the driver's default idle timeout (10 s)", async () => {
    const { url, drop } = await freshPostgresUrl(process.env['TIDE_TEST_DATABASE_URL'] as string);
    const db = new PostgresDb(url, 2);
    /** The backends of both connections for writes, each held by a transaction until both are. */
    const backends = async (): Promise<number[]> => {
      let arrived = 0;
      let go!: () => void;
      const both = new Promise<void>((r) => (go = r));
      const pids = await Promise.all(
        [0, 1].map(() =>
          db.tx(async (tx) => {
            const row = await tx.get<{ pid: number }>('SELECT pg_backend_pid() AS pid');
            if (++arrived === 2) go();
            await both;
            return Number(row?.pid);
          }),
        ),
      );
      return pids.sort((a, b) => a - b);
    };
    try {
      const before = await backends();
      assert.equal(new Set(before).size, 2);
      await new Promise((r) => setTimeout(r, 10_500));
      assert.deepEqual(await backends(), before, 'the same two backends: none closed and reopened');
    } finally {
      await db.close();
      await drop();
    }
  });

  it('answer a read while every connection for writes is held by a transaction', async () => {
    const { url, drop } = await freshPostgresUrl(process.env['TIDE_TEST_DATABASE_URL'] as string);
    const db = new PostgresDb(url, 2);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered = 0;
    try {
      await db.run('CREATE TABLE r (id BIGINT PRIMARY KEY)');
      await db.run('INSERT INTO r (id) VALUES (1)');
      // Two transactions hold both connections (as commits stalled behind a log sync would).
      const txs = [0, 1].map(() => db.tx(async (tx) => {
        await tx.run('UPDATE r SET id = id WHERE id = 1 AND false');
        entered++;
        await held;
      }));
      while (entered < 2) await new Promise((r) => setTimeout(r, 5));
      const write = db.run('INSERT INTO r (id) VALUES (2)');
      // A read goes on; with one pool it would wait for a transaction to end.
      const read = await Promise.race([db.all<{ id: number }>('SELECT id FROM r ORDER BY id'), new Promise<'waited'>((r) => setTimeout(() => r('waited'), 2000))]);
      assert.deepEqual(read, [{ id: 1 }]);
      release();
      await Promise.all([...txs, write]);
      assert.deepEqual(await db.all('SELECT id FROM r ORDER BY id'), [{ id: 1 }, { id: 2 }], 'the write waited for a connection and went in');
    } finally {
      release();
      await db.close();
      await drop();
    }
  });

  it('commit without waiting for the log only the transactions that ask (asyncCommit), and only for themselves', async () => {
    const { url, drop } = await freshPostgresUrl(process.env['TIDE_TEST_DATABASE_URL'] as string);
    const db = new PostgresDb(url, 1);
    const setting = (tx: SqlDb) => tx.get<{ synchronous_commit: string }>('SHOW synchronous_commit');
    try {
      assert.deepEqual(await db.tx((tx) => setting(tx), { asyncCommit: true }), { synchronous_commit: 'off' });
      assert.deepEqual(await db.tx((tx) => setting(tx)), { synchronous_commit: 'on' }, 'the same connection, the next transaction: durable again');
    } finally {
      await db.close();
      await drop();
    }
  });

  it('run a prepared SELECT * again after its table gained a column (another server migrated)', async () => {
    const { url, drop } = await freshPostgresUrl(process.env['TIDE_TEST_DATABASE_URL'] as string);
    const db = new PostgresDb(url, 1);
    try {
      await db.run('CREATE TABLE u (id BIGINT PRIMARY KEY)');
      await db.run('INSERT INTO u (id) VALUES ($1)', [1]);
      const text = 'SELECT * FROM u WHERE id = $1';
      for (let i = 0; i < 3; i++) assert.deepEqual(await db.all(text, [1]), [{ id: 1 }]);
      await db.exec('ALTER TABLE u ADD COLUMN w TEXT');
      assert.deepEqual(await db.all(text, [1]), [{ id: 1, w: null }]);
      assert.deepEqual(await db.all(text, [1]), [{ id: 1, w: null }], 'and from then on');
      const other = 'SELECT * FROM u WHERE id >= $1';
      for (let i = 0; i < 3; i++) await db.tx((tx) => tx.all(other, [0]));
      await db.exec('ALTER TABLE u ADD COLUMN x TEXT');
      await assert.rejects(db.tx((tx) => tx.all(other, [0])), /cached plan must not change result type/, 'in a transaction the failure stands');
      assert.deepEqual(await db.tx((tx) => tx.all(other, [0])), [{ id: 1, w: null, x: null }], 'the next transaction runs it unnamed');
    } finally {
      await db.close();
      await drop();
    }
  });
});
