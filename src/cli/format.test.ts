import assert from 'node:assert/strict';
import { test } from 'node:test';
import Table from 'cli-table3';
import { attemptsTable, eventLine, EVENTS_HEADER, indexRanges, jobRunMs, jobsTable, plainTable, progressText, STATE_CODE } from './format.ts';

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

test('a job shows its running time over all attempts, its progress, the timeout code, and every attempt', () => {
  const job = { id: '7', name: 'train', queue: 'q', tenant: 't', state: 'timeout', reason: 'time limit 1m reached (ran 1m over 2 attempts)', gpus: 1, runSeconds: 40, startedAt: 100_000, finishedAt: 120_000, progress: { step: 40, totalSteps: 100, checkpointStep: 30, checkpointAt: 1, at: 2 } } as never;
  assert.equal(jobRunMs(job, 999_999), 60_000);
  assert.equal(STATE_CODE['timeout'], 'TO');
  assert.equal(progressText(null), '-');
  assert.equal(progressText({ step: 3, totalSteps: null, checkpointStep: null, checkpointAt: null, at: 1 }), '3');
  const row = jobsTable([job], 0).split('\n')[1] ?? '';
  assert.match(row, /^7\s+train\s+q\s+t\s+TO\s+01:00\s+1\s+40\/100, ckpt 30\s+time limit 1m reached/);
  const table = attemptsTable([
    { taskIndex: 0, attempt: 0, runId: '7.0.0', node: 'n1', gpus: [0], gpuMilli: 1000, startedAt: Date.UTC(2026, 0, 1), finishedAt: Date.UTC(2026, 0, 1) + 40_000, exitCode: 143, endReason: 'stopped' },
    { taskIndex: 0, attempt: 1, runId: '7.0.1', node: 'n2', gpus: [], gpuMilli: 0, startedAt: null, finishedAt: null, exitCode: null, endReason: null },
  ], 0);
  assert.deepEqual(table.split('\n').map((l) => l.split(/\s{2,}/)), [
    ['ATTEMPT', 'TASK', 'NODE', 'GPUS', 'STARTED', 'TIME', 'EXIT', 'END'],
    ['0', '0', 'n1', '0', '2026-01-01T00:00:00.000Z', '00:40', '143', 'stopped'],
    ['1', '0', 'n2', '-', '-', '-', '-', 'running'],
  ]);
});

test("an array's adjacent pending elements that wait for the same reason are one row, as in squeue; -r lists each", () => {
  const element = (id: number, i: number, state: string, reason: string | null, arrayId: string | null = '7') =>
    ({ id: String(id), name: `sweep-${i}`, queue: 'q', tenant: 't', state, reason, gpus: 1, runSeconds: 0, startedAt: state === 'running' ? 0 : null, finishedAt: null, progress: null, arrayId, spec: { arrayIndex: i } }) as never;
  const jobs = [element(100, 0, 'running', null), element(101, 1, 'pending', 'waiting-for-resources'), element(102, 2, 'pending', 'waiting-for-resources'), element(103, 3, 'pending', 'waiting-for-resources'), element(105, 5, 'pending', 'waiting-for-resources'), element(104, 4, 'pending', 'lower-priority'), element(200, 0, 'pending', 'waiting-for-resources', null)];
  const rows = jobsTable(jobs, 0).split('\n').slice(1).map((l) => l.split(/\s{2,}/).slice(0, 2).join(' '));
  assert.deepEqual(rows, ['100 sweep-0', '7_[1-3,5] sweep-[1-3,5]', '104 sweep-4', '200 sweep-0']);
  assert.equal(jobsTable(jobs, 0, true).split('\n').length, 1 + jobs.length);
  // An array's waiting rest is one job of several elements, and a range runs several together.
  const range = (id: number, first: number, n: number, state: string) =>
    ({ id: String(id), name: n === 1 ? `grid-${first}` : `grid-[${first}-${first + n - 1}]`, queue: 'q', tenant: 't', state, reason: state === 'pending' ? 'waiting-for-resources' : null, gpus: 0, runSeconds: 0, startedAt: null, finishedAt: null, progress: null, arrayId: '9', arrayIndex: first, arrayCount: n, spec: {} }) as never;
  const ranged = [range(300, 0, 190, 'running'), range(299, 190, 810, 'pending'), range(301, 1000, 1, 'pending')];
  assert.deepEqual(jobsTable(ranged, 0).split('\n').slice(1).map((l) => l.split(/\s{2,}/).slice(0, 2).join(' ')), ['9_[0-189] grid-[0-189]', '9_[190-1000] grid-[190-1000]']);
  assert.equal(indexRanges([9, 3, 0, 1, 2, 7, 10]), '0-3,7,9-10');
  assert.equal(indexRanges([4]), '4');
});
