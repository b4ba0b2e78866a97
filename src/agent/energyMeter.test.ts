import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { EnergyMeter, intervalJoules, type MeterRun, type MeterSample } from './energyMeter.ts';

const gpu = (index: number, powerWatts: number, utilization = 50, energyMj?: number): MeterSample => ({ index, powerWatts, utilization, ...(energyMj !== undefined ? { energyMj } : {}) });
const run = (runId: string, gpus: number[], gpuMilli: number, startedAt: number | null, alive = true): MeterRun => ({ runId, gpus, gpuMilli, startedAt, alive });
const byRun = (m: EnergyMeter) => new Map(m.counters().runs.map((r) => [r.runId, r]));
const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

test('a whole GPU held for the whole interval gets the trapezoid of its power', () => {
  const m = new EnergyMeter('e1');
  m.observe(0, [gpu(0, 100)], [run('1.0.0', [0], 1000, 0)]);
  assert.equal(m.observe(10_000, [gpu(0, 200)], [run('1.0.0', [0], 1000, 0)]), 1500);
  const c = m.counters();
  assert.equal(c.nodeJ, 1500);
  assert.equal(c.unallocatedJ, 0);
  assert.equal(byRun(m).get('1.0.0')?.energyJ, 1500);
  assert.equal(c.seq, 1);
});

test('a fractional GPU is split among its tenants by gpu milli; an idle GPU is unallocated', () => {
  const m = new EnergyMeter('e1');
  const runs = [run('1.0.0', [0], 300, 0), run('2.0.0', [0], 600, 0)];
  m.observe(0, [gpu(0, 300), gpu(1, 60)], runs);
  m.observe(1000, [gpu(0, 300), gpu(1, 60)], runs);
  const r = byRun(m);
  close(r.get('1.0.0')?.energyJ ?? 0, 100, 'a third');
  close(r.get('2.0.0')?.energyJ ?? 0, 200, 'two thirds');
  close(m.counters().unallocatedJ, 60, 'GPU 1 is node idle');
  close(m.counters().nodeJ, 360, 'node');
});

test('a run that starts within the interval gets only the time it held the GPU', () => {
  const m = new EnergyMeter('e1');
  m.observe(0, [gpu(0, 100)], []);
  m.observe(10_000, [gpu(0, 100)], [run('1.0.0', [0], 1000, 4000)]);
  close(byRun(m).get('1.0.0')?.energyJ ?? 0, 600, 'six of ten seconds');
  close(m.counters().unallocatedJ, 400, 'the first four seconds');
});

test('energy of an allocated GPU that read 0 % at both ends is also counted as the run\'s idle energy', () => {
  const m = new EnergyMeter('e1');
  const runs = [run('1.0.0', [0, 1], 1000, 0)];
  m.observe(0, [gpu(0, 70, 0), gpu(1, 300, 80)], runs);
  m.observe(1000, [gpu(0, 70, 0), gpu(1, 300, 90)], runs);
  const r = byRun(m).get('1.0.0');
  close(r?.energyJ ?? 0, 370, 'both GPUs');
  close(r?.idleJ ?? 0, 70, 'the unused one');
});

test('the driver counter is used where both samples have it; a counter that went back falls back to power', () => {
  assert.equal(intervalJoules({ powerWatts: 100, energyMj: 5_000 }, { powerWatts: 100, energyMj: 7_500 }, 60_000), 2.5);
  assert.equal(intervalJoules({ powerWatts: 100, energyMj: 5_000 }, { powerWatts: 300, energyMj: 10 }, 1000), 200);
  assert.equal(intervalJoules({ powerWatts: 100, energyMj: null }, { powerWatts: 300, energyMj: 10 }, 1000), 200);
});

test('an empty sample (nvidia-smi failed) changes nothing; the next one covers the gap', () => {
  const m = new EnergyMeter('e1');
  const runs = [run('1.0.0', [0], 1000, 0)];
  m.observe(0, [gpu(0, 100)], runs);
  assert.equal(m.observe(1000, [], runs), 0);
  assert.equal(m.counters().seq, 0);
  m.observe(3000, [gpu(0, 100)], runs);
  assert.equal(m.counters().nodeJ, 300);
});

test('an ended run counts to the sample that finds it ended, then is sent until a server acknowledges it', () => {
  const m = new EnergyMeter('e1');
  m.observe(0, [gpu(0, 100)], [run('1.0.0', [0], 1000, 0)]);
  m.observe(1000, [gpu(0, 100)], [run('1.0.0', [0], 1000, 0, false)]);
  m.observe(2000, [gpu(0, 100)], []);
  assert.equal(byRun(m).get('1.0.0')?.energyJ, 100, 'nothing after its end');
  close(m.counters().unallocatedJ, 100, 'the second second');
  m.acknowledged(0);
  assert.ok(byRun(m).has('1.0.0'), 'kept: its last energy was counted in observation 1');
  m.acknowledged(1);
  assert.ok(!byRun(m).has('1.0.0'));
  // The runner may still hold it (ended) until the server forgets it: it is not counted again.
  m.observe(3000, [gpu(0, 100)], [run('1.0.0', [0], 1000, 0, false)]);
  assert.ok(!byRun(m).has('1.0.0'));
  close(m.counters().unallocatedJ, 200, 'the third second too');
  // The node's counters keep the run's joules: they stay cumulative.
  assert.equal(m.counters().nodeJ, 300);
});

test('a run that never started holds nothing', () => {
  const m = new EnergyMeter('e1');
  m.observe(0, [gpu(0, 100)], [run('1.0.0', [0], 1000, null, false)]);
  m.observe(1000, [gpu(0, 100)], [run('1.0.0', [0], 1000, null, false)]);
  assert.equal(m.counters().runs.length, 0);
  assert.equal(m.counters().unallocatedJ, 100);
});

test('restored from its state, the meter keeps its epoch and counters and integrates the restart gap once', () => {
  const m = new EnergyMeter('e1');
  const runs = [run('1.0.0', [0], 1000, 0)];
  m.observe(0, [gpu(0, 100)], runs);
  m.observe(1000, [gpu(0, 100)], runs);
  const saved = JSON.parse(JSON.stringify(m.state()));
  const again = new EnergyMeter('e2', saved);
  again.observe(11_000, [gpu(0, 100)], runs);
  const c = again.counters();
  assert.equal(c.epoch, 'e1');
  assert.equal(c.seq, 2);
  assert.equal(c.nodeJ, 1100);
  assert.equal(byRun(again).get('1.0.0')?.energyJ, 1100);
  assert.equal(new EnergyMeter('e3', { epoch: 'x', seq: 'bad' }).counters().epoch, 'e3', 'an unreadable state starts a new epoch');
});

test('property: every joule measured goes to a run or to unallocated idle (closure), and idle never exceeds a run\'s energy', () => {
  const arb = fc.record({
    gpus: fc.integer({ min: 1, max: 4 }),
    steps: fc.array(
      fc.record({
        dt: fc.integer({ min: 1, max: 5000 }),
        power: fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 4, maxLength: 4 }),
        util: fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 4, maxLength: 4 }),
        runs: fc.array(fc.record({ id: fc.integer({ min: 0, max: 6 }), gpu: fc.integer({ min: 0, max: 3 }), milli: fc.integer({ min: 1, max: 1000 }), back: fc.integer({ min: 0, max: 6000 }), alive: fc.boolean() }), { maxLength: 5 }),
        ack: fc.boolean(),
      }),
      { minLength: 1, maxLength: 20 },
    ),
  });
  fc.assert(
    fc.property(arb, ({ gpus, steps }) => {
      const m = new EnergyMeter('p');
      let t = 0;
      // Sums of the counters' joules seen over time, including runs later dropped after an ack.
      const lastSeen = new Map<string, number>();
      for (const s of steps) {
        t += s.dt;
        const samples = Array.from({ length: gpus }, (_, i) => gpu(i, s.power[i] ?? 0, s.util[i] ?? 0));
        const runs = s.runs.filter((r) => r.gpu < gpus).map((r) => run(`${r.id}.0.0`, [r.gpu], r.milli, Math.max(0, t - r.back), r.alive));
        const seen = new Set<string>();
        m.observe(t, samples, runs.filter((r) => !seen.has(r.runId) && seen.add(r.runId)));
        for (const r of m.counters().runs) {
          assert.ok(r.idleJ <= r.energyJ + 1e-9);
          lastSeen.set(r.runId, r.energyJ);
        }
        if (s.ack) m.acknowledged(m.counters().seq);
      }
      const c = m.counters();
      const jobs = [...lastSeen.values()].reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(jobs + c.unallocatedJ - c.nodeJ) <= 1e-6 * Math.max(1, c.nodeJ), `${jobs} + ${c.unallocatedJ} vs ${c.nodeJ}`);
    }),
    { numRuns: 300, seed: 12 },
  );
});
