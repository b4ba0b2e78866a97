import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCpu, parseMemory } from './quantity.ts';
import { parseDuration, parseJobSpec } from './spec.ts';

test('Kubernetes quantities: CPU cores and millicores, memory with binary and SI suffixes', () => {
  assert.deepEqual(parseCpu(4), { ok: true, value: 4000 });
  assert.deepEqual(parseCpu('500m'), { ok: true, value: 500 });
  assert.deepEqual(parseCpu('2.5'), { ok: true, value: 2500 });
  assert.equal(parseCpu('4 cores').ok, false);
  assert.deepEqual(parseMemory('64Gi'), { ok: true, value: 65536 });
  assert.deepEqual(parseMemory('512Mi'), { ok: true, value: 512 });
  assert.deepEqual(parseMemory('1G'), { ok: true, value: 954 });
  assert.deepEqual(parseMemory(2 ** 30), { ok: true, value: 1024 });
  assert.equal(parseMemory('12Qi').ok, false);
  assert.equal(parseMemory(-1).ok, false);
});

test('a full spec is normalised: gangs, fractions, defaults', () => {
  const r = parseJobSpec({
    name: 'llm',
    kind: 'training',
    priority: 5,
    tasks: [
      { name: 'worker', replicas: 4, gpus: 8, gpuModels: ['H100'], cpu: 32, memory: '512Gi', command: ['python', 'train.py'], env: { LR: 0.1 } },
      { name: 'eval', gpus: 0.25, command: 'python eval.py' },
    ],
  });
  assert.ok(r.ok);
  const [w, e] = r.spec.groups;
  assert.deepEqual([w?.replicas, w?.gpuCount, w?.gpuMilli, w?.cpuMilli, w?.memoryMib, w?.env['LR']], [4, 8, 1000, 32000, 524288, '0.1']);
  assert.deepEqual([e?.gpuCount, e?.gpuMilli, e?.command], [1, 250, ['/bin/sh', '-c', 'python eval.py']]);
  assert.equal(r.spec.queue, 'default');
  assert.equal(r.spec.preemptible, true);
});

test('every offending field is named, not just the first', () => {
  const r = parseJobSpec({ name: '', kind: 'serving', priority: 1.5, array: 3, extra: 1, tasks: [{ gpus: 1.5, memory: 'lots', env: { TIDE_JOB_ID: 'x', 'BAD-NAME': 'y' } }] });
  assert.equal(r.ok, false);
  if (r.ok) return;
  const paths = r.errors.map((e) => e.path).sort();
  assert.deepEqual(paths, ['array', 'extra', 'kind', 'name', 'priority', 'tasks[0].command', 'tasks[0].env.BAD-NAME', 'tasks[0].env.TIDE_JOB_ID', 'tasks[0].gpus', 'tasks[0].memory']);
});

test('arrays are for batch jobs; non-objects are refused with a root error', () => {
  const r = parseJobSpec({ name: 'a', kind: 'training', array: 2, tasks: [{ command: 'x' }] });
  assert.equal(r.ok, false);
  if (!r.ok) assert.deepEqual(r.errors.map((e) => e.path), ['array']);
  for (const v of [null, 'x', 42, []]) {
    const bad = parseJobSpec(v);
    assert.equal(bad.ok, false);
    if (!bad.ok) assert.equal(bad.errors[0]?.path, '(root)');
  }
});

test('time limits read like Slurm --time or a duration; a limit, job type, speeds, preemption budget and elastic minimum are kept', () => {
  const cases: [unknown, number | null][] = [[90, 90], ['90s', 90], ['30m', 1800], ['2h30m', 9000], ['1d', 86400], ['1:30:00', 5400], ['2-00:00:00', 172800], ['05:00', 300], ['abc', null], ['', null], [0, null], [-1, null], ['1e9', null]];
  for (const [v, want] of cases) {
    const got = parseDuration(v);
    if (want === null) assert.equal(typeof got, 'string', `${JSON.stringify(v)} is refused`);
    else assert.equal(got, want, JSON.stringify(v));
  }
  const r = parseJobSpec({ name: 'a', timeLimit: '1h', jobType: 'bert', gpuSpeeds: { A100: 0.5 }, maxPreemptions: 2, tasks: [{ command: 'x', replicas: 4, minReplicas: 2 }] });
  assert.equal(r.ok, true);
  if (!r.ok) return;
  assert.equal(r.spec.timeLimitSeconds, 3600);
  assert.equal(r.spec.jobType, 'bert');
  assert.deepEqual(r.spec.gpuSpeeds, { A100: 0.5 });
  assert.equal(r.spec.maxPreemptions, 2);
  assert.equal(r.spec.groups[0]?.minReplicas, 2);
  const bad = parseJobSpec({ name: 'a', timeLimit: 'zz', gpuSpeeds: { A100: -1 }, maxPreemptions: -1, tasks: [{ command: 'x', replicas: 2, minReplicas: 3 }] });
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.deepEqual(bad.errors.map((e) => e.path), ['timeLimit', 'gpuSpeeds.A100', 'maxPreemptions', 'tasks[0].minReplicas']);
});

test('energy fields: maxSlowdown, deferrable and a deadline after submission; bad ones named', () => {
  const r = parseJobSpec({ name: 'a', timeLimit: '2h', maxSlowdown: 0.05, deferrable: true, deadline: '1d', tasks: [{ command: 'x' }] });
  assert.ok(r.ok);
  if (r.ok) {
    assert.equal(r.spec.maxSlowdown, 0.05);
    assert.equal(r.spec.deferrable, true);
    assert.equal(r.spec.deadlineSeconds, 86_400);
  }
  const plain = parseJobSpec({ name: 'a', tasks: [{ command: 'x' }] });
  assert.ok(plain.ok && plain.spec.maxSlowdown === undefined && plain.spec.deferrable === undefined && plain.spec.deadlineSeconds === undefined);
  const bad = parseJobSpec({ name: 'a', maxSlowdown: 0.9, deferrable: 'yes', deadline: 'soon', tasks: [{ command: 'x' }] });
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.deepEqual(bad.errors.map((e) => e.path), ['maxSlowdown', 'deferrable', 'deadline']);
});
