/**
 * SQLite's checkpoints on a thread of their own (walCheckpoints.ts): the main connection stops
 * checkpointing once the thread runs, the log stays bounded under a stream of writes (the quiet
 * passes let it start over), nothing written is lost, and a thread that cannot start leaves
 * SQLite's own checkpoints in place.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SqliteDb } from './sqlDb.ts';

const PAGE = 4096;

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Writes `txs` transactions of `rows` rows of about 1 KB each; returns the largest log seen after a commit (bytes). */
async function write(db: SqliteDb, path: string, txs: number, rows: number): Promise<number> {
  let largest = 0;
  for (let k = 0; k < txs; k++) {
    await db.tx(async (d) => {
      for (let i = 0; i < rows; i++) await d.run('INSERT INTO t (body) VALUES ($1)', ['x'.repeat(1000)]);
    });
    largest = Math.max(largest, statSync(`${path}-wal`).size);
    // A server's pace (its commits come between other work), with the checkpoint thread's answers let in.
    await new Promise((r) => setTimeout(r, 1));
  }
  return largest;
}

test('checkpoints run on their own thread: the main connection stops checkpointing, the log stays bounded, nothing is lost', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-wal-'));
  const path = join(dir, 'tide.db');
  const quietAfterFrames = 256;
  const db = new SqliteDb(path, { quietAfterFrames });
  try {
    await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)');
    assert.equal((await db.get<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint'))?.wal_autocheckpoint, 1000, "SQLite's own until the thread starts");
    // 400 commits of ~20 pages: 8,000 pages written, 31 times the quiet threshold.
    const largest = await write(db, path, 400, 20);
    const c = db.checkpoints?.counts;
    assert.ok(c, 'a file database has a checkpointer');
    assert.equal((await db.get<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint'))?.wal_autocheckpoint, 0, 'the main connection no longer checkpoints');
    await until('a background and a quiet pass', () => c.background > 0 && c.quiet > 0);
    assert.equal(c.failures, 0);
    // Without the quiet passes the writer seldom finds the log all copied: it reached 11.8 MB here
    // (quietAfterFrames 1e9), against 3.0-3.6 MB with them.
    assert.ok(largest < 8 * quietAfterFrames * PAGE, `the log reached ${largest} bytes`);
    assert.equal((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM t'))?.n, 8000);
  } finally {
    await db.close();
  }
  const again = new SqliteDb(path);
  try {
    assert.equal((await again.get<{ n: number }>('SELECT COUNT(*) AS n FROM t'))?.n, 8000, 'every row after a reopen');
  } finally {
    await again.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a checkpoint thread that cannot start leaves SQLite to checkpoint as it does by default, and writes go on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-wal-'));
  const path = join(dir, 'tide.db');
  const db = new SqliteDb(path, { module: join(dir, 'no-such-module.js') });
  try {
    await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)');
    await write(db, path, 100, 5);
    const c = db.checkpoints?.counts;
    await until('the failure', () => (c?.failures ?? 0) > 0);
    assert.equal(c?.failures, 1);
    assert.equal((await db.get<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint'))?.wal_autocheckpoint, 1000);
    await write(db, path, 10, 5);
    assert.equal((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM t'))?.n, 550);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('closing while a quiet pass is under way waits for the thread to exit (the process is kept alive till then)', async () => {
  // A log of one frame asks for a quiet pass after every background pass: closing right after the
  // commit that starts the thread finds a background pass under way and the quiet pass it starts.
  // The quiet pass's answer used to let go of the thread that close() holds, and a process with
  // nothing else to do ended while close() still waited (CI: both tests of this file cancelled).
  for (let round = 0; round < 20; round++) {
    const dir = mkdtempSync(join(tmpdir(), 'tide-wal-'));
    const path = join(dir, 'tide.db');
    const db = new SqliteDb(path, { quietAfterFrames: 1 });
    try {
      await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)');
      for (let i = 0; i < 64; i++) await db.tx(async (d) => void (await d.run('INSERT INTO t (body) VALUES ($1)', ['x'])));
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(db.checkpoints?.counts.failures, 0, `round ${round}`);
  }
});
