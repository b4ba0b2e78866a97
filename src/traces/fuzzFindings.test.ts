/** Regressions for what test/fuzz found in trace readers (each failed before its fix). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { UserError } from '../util/errors.ts';
import { readOpenbNodes, readOpenbPods } from './openb.ts';

const dir = mkdtempSync(join(tmpdir(), 'tide-openb-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};

test('a GPU count past any node is a UserError on its line, not a RangeError (or an allocation of billions)', () => {
  const f = file('nodes.csv', 'sn,cpu_milli,memory_mib,gpu,model\nn1,1000,1000,8,V100\nn2,1000,1000,4294967296,V100\n');
  assert.throws(() => readOpenbNodes(f), (e: unknown) => e instanceof UserError && e.message === `${f}:3: field 'gpu': 4294967296 is over 1024`);
});

test('integers past 2^53 are refused: they are not stored exactly', () => {
  const f = file('pods.csv', 'name,cpu_milli,memory_mib,num_gpu,gpu_milli\np1,99999999999999999999,1,0,0\n');
  assert.throws(() => readOpenbPods(f, new Set()), (e: unknown) => e instanceof UserError && /:2: field 'cpu_milli': 99999999999999999999 is over/.test(e.message));
});
