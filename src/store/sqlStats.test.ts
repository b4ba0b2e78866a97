import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SqliteDb } from './sqlDb.ts';
import { countingDb, SqlStats } from './sqlStats.ts';

test('countingDb counts statements, rows and transactions per SQL text, inside transactions too', async () => {
  const stats = new SqlStats();
  const db = countingDb(new SqliteDb(':memory:'), stats);
  await db.exec('CREATE TABLE t (x INTEGER)');
  await db.tx(async (inner) => {
    for (let i = 0; i < 3; i++) await inner.run('INSERT INTO t (x) VALUES ($1)', [i]);
  });
  assert.equal((await db.all('SELECT x FROM t')).length, 3);
  assert.equal(await db.get('SELECT x FROM t WHERE x = $1', [7]), undefined);
  assert.deepEqual(stats.totals(), { transactions: 1, statements: 6, rows: 6 });
  assert.deepEqual(stats.bySql.get('INSERT INTO t (x) VALUES ($1)')?.statements, 3);
  assert.equal(stats.top(1).length, 1);
  stats.reset();
  assert.deepEqual(stats.totals(), { transactions: 0, statements: 0, rows: 0 });
  await db.close();
});
