/** Regressions for what test/fuzz found in `tide sim` input files (each failed before its fix). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { UserError } from '../util/errors.ts';
import { readClusterFile, readWorkloadFile } from './scenarioFiles.ts';

const dir = mkdtempSync(join(tmpdir(), 'tide-scenario-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};
const userError = (re: RegExp) => (e: unknown) => e instanceof UserError && re.test(e.message);

test('a node group of 1e21 nodes, or 1e9 GPUs a node, is refused by line and field (it was a RangeError or an endless allocation)', () => {
  const big = file('big.yaml', 'nodes:\n  - name: a\n    count: 1e21\n    gpus: 8\n');
  assert.throws(() => readClusterFile(big), userError(/big\.yaml:3: field 'nodes\[0\]\.count': must be at most 100000/));
  const gpus = file('gpus.yaml', 'nodes:\n  - name: a\n    count: 1\n    gpus: 1000000000\n');
  assert.throws(() => readClusterFile(gpus), userError(/gpus\.yaml:4: field 'nodes\[0\]\.gpus': must be at most 64/));
});

test('numbers past 2^53 are refused, not stored inexactly', () => {
  const f = file('cpu.yaml', 'nodes:\n  - name: a\n    count: 1\n    gpus: 1\n    cpuMilli: 9007199254740992\n');
  assert.throws(() => readClusterFile(f), userError(/cpu\.yaml:5: field 'nodes\[0\]\.cpuMilli': must be at most/));
});

test("a priority class named like an Object.prototype member is unknown (it became a function as the job's priority)", () => {
  const y = file('w.yaml', 'jobs:\n  - id: a\n    gpus: 1\n    totalSteps: 10\n    throughput: {V100: 1}\n    priorityClass: constructor\n');
  assert.throws(() => readWorkloadFile(y), userError(/w\.yaml:6: field 'jobs\[0\]\.priorityClass': unknown class 'constructor'/));
  const c = file('w.csv', 'id,submit,gpus,total_steps,throughput_V100,priority_class\na,0,1,10,1,toString\n');
  assert.throws(() => readWorkloadFile(c), userError(/w\.csv:2: field 'priority_class': unknown class 'toString'/));
});
