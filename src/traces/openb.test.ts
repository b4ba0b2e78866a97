import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../util/errors.ts';
import { readOpenbNodes, readOpenbPods } from './openb.ts';

const dir = mkdtempSync(join(tmpdir(), 'tide-openb-'));
const HEADER = 'name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec';
const models = new Set(['T4', 'V100']);

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

test('reads pods: CPU-only, fractional, whole and model-constrained', () => {
  const file = write('ok.csv', `${HEADER}\np0,1000,2048,0,0,\np1,2000,4096,1,450,\np2,8000,16384,2,1000,T4|V100\n`);
  const pods = readOpenbPods(file, models);
  assert.deepEqual(
    pods.map((p) => [p.id, p.cpuMilli, p.memoryMib, p.gpuCount, p.gpuMilli, p.allowedModels]),
    [['p0', 1000, 2048, 0, 0, []], ['p1', 2000, 4096, 1, 450, []], ['p2', 8000, 16384, 2, 1000, ['T4', 'V100']]],
  );
});

test('reads the five-column pod lists (no gpu_spec)', () => {
  const file = write('five.csv', 'name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,2048,8,1000\n');
  assert.equal(readOpenbPods(file, models)[0]?.gpuCount, 8);
});

const badPods: [string, string, RegExp][] = [
  ['missing column', 'name,cpu_milli,num_gpu,gpu_milli\np0,1,1,1\n', /:1: field 'memory_mib': missing column/],
  ['non-numeric value', `${HEADER}\np0,1000,2048,0,0,\np1,lots,2048,1,500,\n`, /:3: field 'cpu_milli': 'lots' is not an integer/],
  ['negative value', `${HEADER}\np0,1000,-5,0,0,\n`, /:2: field 'memory_mib': -5 is negative/],
  ['GPU share over 1000', `${HEADER}\np0,1000,5,1,1200,\n`, /:2: field 'gpu_milli': 1200 is over 1000/],
  ['unknown GPU model', `${HEADER}\np0,1000,5,1,500,T4|H100\n`, /:2: field 'gpu_spec': unknown GPU model 'H100'/],
  ['empty file', '', /:1: empty file/],
  ['header only', `${HEADER}\n`, /:2: no data rows/],
  ['wrong delimiter', 'name;cpu_milli;memory_mib;num_gpu;gpu_milli\np0;1;1;0;0\n', /:1: wrong delimiter: columns are separated by semicolons/],
  ['short row', `${HEADER}\np0,1000,5\n`, /:2: expected 6 values, found 3/],
  ['fraction on several GPUs', `${HEADER}\np0,1000,5,2,500,\n`, /:2: field 'gpu_milli': a pod of 2 GPUs must ask for 1000/],
];

for (const [name, text, message] of badPods) {
  test(`bad pod list: ${name} → one-line error with file, line and field`, () => {
    const file = write(`${name.replace(/\W+/g, '-')}.csv`, text);
    assert.throws(
      () => readOpenbPods(file, models),
      (e: unknown) => e instanceof UserError && e.message.startsWith(file) && message.test(e.message) && !e.message.includes('\n'),
    );
  });
}

test('bad node list: a node with GPUs but no model', () => {
  const file = write('nodes.csv', 'sn,cpu_milli,memory_mib,gpu,model\nn0,64000,1024,2,\n');
  assert.throws(() => readOpenbNodes(file), /nodes\.csv:2: field 'model': a node with GPUs needs a GPU model/);
});

test('a missing file is a user error', () => {
  assert.throws(() => readOpenbNodes(join(dir, 'nope.csv')), (e: unknown) => e instanceof UserError && /no such file/.test(e.message));
});
