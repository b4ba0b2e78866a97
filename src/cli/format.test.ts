import assert from 'node:assert/strict';
import { test } from 'node:test';
import Table from 'cli-table3';
import { eventLine, EVENTS_HEADER, plainTable } from './format.ts';

/** The borderless layout cli-table3 produced for these tables before plainTable stopped loading it. */
function cliTable3(head: string[], rows: (string | number)[][]): string {
  const t = new Table({
    head,
    style: { head: [], border: [], compact: true, 'padding-left': 0, 'padding-right': 2 },
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '' },
  });
  for (const r of rows) t.push(r.map(String));
  return t.toString().split('\n').map((l) => l.trimEnd()).join('\n');
}

test('plainTable lays out columns exactly as cli-table3 did', () => {
  const cases: [string[], (string | number)[][]][] = [
    [['JOBID', 'NAME', 'QUEUE', 'ST', 'NODES/REASON'], [[1, 'train', 'default', 'R', 'n1[0-3]'], [12345, 'a-much-longer-job-name-…', 'q', 'PD', '(waiting for 8 GPUs)'], [7, '', '', 'CD', '']]],
    [['TENANT'], []],
    [['A', 'B'], [['', ''], ['x', 'y']]],
  ];
  for (const [head, rows] of cases) assert.equal(plainTable(head, rows), cliTable3(head, rows));
});

test('a line break in a cell stays on its row', () => {
  assert.equal(plainTable(['A', 'B'], [['x\ny', 'z']]), 'A    B\nx y  z');
});

test('event lines keep their columns under the header whatever the widths', () => {
  const line = eventLine({ id: 1, at: Date.UTC(2026, 0, 2, 3, 4, 5), type: 'job:submitted', jobId: '42', nodeId: null, tenant: 't', message: 'submitted by t' });
  assert.equal(line.indexOf('job:submitted'), EVENTS_HEADER.indexOf('EVENT'));
  assert.equal(line.indexOf('42'), EVENTS_HEADER.indexOf('JOB'));
  assert.equal(line.indexOf('submitted by t'), EVENTS_HEADER.indexOf('MESSAGE'));
});
