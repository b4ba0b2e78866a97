import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { atLines, readHistoryFile } from './historyFile.ts';

const dir = mkdtempSync(join(tmpdir(), 'tide-history-'));
const file = (name: string, text: string): string => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};

test('a Prometheus export reads as points; each bad row is named by its line and field', () => {
  const good = readHistoryFile(file('good.csv', 't_seconds,value\n1733400000,0.5\n1733400060,0.75\n1733400120,0\n'));
  assert.deepEqual(good.points, [[1733400000, 0.5], [1733400060, 0.75], [1733400120, 0]]);
  assert.deepEqual(good.lines, [2, 3, 4]);
  const other = readHistoryFile(file('other.csv', 't_seconds,rate\n10,1\n20,2\n'));
  assert.deepEqual(other.points, [[10, 1], [20, 2]]);
  const bad = file('bad.csv', 't_seconds,value\n100,1\nabc,1\n200,-3\n150,1\n300,\n');
  assert.throws(() => readHistoryFile(bad), (e: Error) => {
    assert.match(e.message, /bad\.csv:3: field 't_seconds': 'abc' is not a number of seconds/);
    assert.match(e.message, /bad\.csv:6: field 'value': '' is not a number/);
    return true;
  });
  const order = file('order.csv', 't_seconds,value\n100,1\n200,-3\n150,1\n');
  assert.throws(() => readHistoryFile(order), (e: Error) => {
    assert.match(e.message, /order\.csv:3: field 'value': -3 is not a rate from 0/);
    assert.match(e.message, /order\.csv:4: field 't_seconds': 150 does not come after 200/);
    return true;
  });
  assert.throws(() => readHistoryFile(file('cols.csv', 'time,a,b\n1,2,3\n')), /cols\.csv:1: .*t_seconds/);
  assert.throws(() => readHistoryFile(join(dir, 'missing.csv')), /missing\.csv: cannot read \(no such file\)/);
});

test('too large: a file over the body limit, or over the most rows, is refused before it is sent', () => {
  const rows = Array.from({ length: 100_001 }, (_, i) => `${i + 1},1`).join('\n');
  assert.throws(() => readHistoryFile(file('rows.csv', `t_seconds,value\n${rows}\n`)), /100001 rows, at most 100000/);
  const huge = file('huge.csv', `t_seconds,value\n${'1,1'.padEnd(5 * 1024 * 1024, '0')}\n`);
  assert.throws(() => readHistoryFile(huge), /MiB, at most 4 MiB/);
});

test("the server's refusal by point is told by the file's line", () => {
  assert.deepEqual(atLines('h.csv', [2, 3, 7], [{ path: 'points[2][0]', message: 'not before the start' }, { path: 'points', message: 'too long' }]), ["h.csv:7: field 't_seconds': not before the start", 'h.csv: too long']);
});
