import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allocationKey, readsIdle, stepIdle, type Allocation, type GpuSample, type IdleSettings, type IdleStreak } from './idleDetector.ts';

const SETTINGS: IdleSettings = { afterMs: 60_000, utilizationPercent: 5, memoryPercent: 5, maxGapMs: 15_000 };
const MEM = 81_920;

const alloc = (over: Partial<Allocation> = {}): Allocation => ({ jobId: '1', tenant: 'a', task: 0, attempt: 0, node: 'n1', gpu: 0, gpuMilli: 1000, startedAt: 0, ...over });
const idle = (at: number): GpuSample => ({ at, utilization: 0, memoryUsedMib: 300, memoryMib: MEM });
const busy = (at: number): GpuSample => ({ at, utilization: 90, memoryUsedMib: 60_000, memoryMib: MEM });

/** Runs steps with one sample per step for every GPU (the same for all), returns the last step and every crossing. */
function run(allocations: readonly Allocation[], samples: readonly (GpuSample | undefined)[], settings = SETTINGS) {
  let streaks = new Map<string, IdleStreak>();
  const crossed: IdleStreak[] = [];
  const ended: IdleStreak[] = [];
  let seconds = 0;
  let last: ReturnType<typeof stepIdle> | null = null;
  for (const s of samples) {
    last = stepIdle(streaks, allocations, () => s, settings);
    streaks = last.streaks;
    crossed.push(...last.crossed);
    ended.push(...last.ended);
    for (const v of last.idleGpuSeconds.values()) seconds += v;
  }
  return { streaks, crossed, ended, seconds, last };
}

const every = (fromMs: number, toMs: number, stepMs: number, f: (at: number) => GpuSample): GpuSample[] => {
  const out: GpuSample[] = [];
  for (let t = fromMs; t <= toMs; t += stepMs) out.push(f(t));
  return out;
};

test('a sample is idle when both utilization and memory are at or below their thresholds', () => {
  assert.equal(readsIdle(idle(0), SETTINGS), true);
  assert.equal(readsIdle({ at: 0, utilization: 5, memoryUsedMib: MEM * 0.05, memoryMib: MEM }, SETTINGS), true, 'at the thresholds is idle');
  assert.equal(readsIdle({ at: 0, utilization: 6, memoryUsedMib: 0, memoryMib: MEM }, SETTINGS), false, 'computing');
  // A process that keeps a model loaded but launches nothing is not idle by this rule.
  assert.equal(readsIdle({ at: 0, utilization: 0, memoryUsedMib: 20_000, memoryMib: MEM }, SETTINGS), false);
  assert.equal(readsIdle({ at: 0, utilization: 0, memoryUsedMib: 20_000, memoryMib: MEM }, { ...SETTINGS, memoryPercent: 100 }), true, 'memoryPercent 100: utilization alone decides');
});

test('a GPU idle for afterMs crosses once, at the sample that reaches it, and its whole streak is counted', () => {
  const r = run([alloc()], every(1000, 91_000, 2000, idle));
  assert.equal(r.crossed.length, 1);
  const c = r.crossed[0] as IdleStreak;
  assert.equal(c.since, 1000);
  assert.equal(c.crossedAt, 61_000, 'the first sample 60 s after the first idle one');
  const s = r.streaks.get(allocationKey(alloc())) as IdleStreak;
  assert.deepEqual([s.since, s.lastAt, s.crossedAt], [1000, 91_000, 61_000]);
  // 60 s at crossing, then 30 s more, on one whole GPU.
  assert.equal(r.seconds, 90);
});

test('not yet past afterMs: tracked, not crossed, nothing counted', () => {
  const r = run([alloc()], every(0, 58_000, 2000, idle));
  assert.equal(r.crossed.length, 0);
  assert.equal(r.seconds, 0);
  assert.equal(r.streaks.size, 1);
});

test('work resets the streak: idle time counts again from the next idle sample', () => {
  const samples = [...every(0, 50_000, 2000, idle), busy(52_000), ...every(54_000, 110_000, 2000, idle)];
  const r = run([alloc()], samples);
  assert.equal(r.ended.length, 1, 'the first streak ended at the busy sample');
  assert.equal(r.crossed.length, 0, '50 s, then 56 s: neither reaches 60 s');
  assert.equal((r.streaks.get(allocationKey(alloc())) as IdleStreak).since, 54_000);
  const more = run([alloc()], [...samples, idle(114_000)]);
  assert.equal(more.crossed.length, 1, '60 s after the busy sample');
});

test('a gap is not idleness: idle samples further apart than maxGapMs start a new streak', () => {
  // Idle 0-40 s, no telemetry for 30 s, idle again 70-110 s: 110 s of wall clock, never 60 s of evidence.
  const samples = [...every(0, 40_000, 2000, idle), ...new Array<undefined>(15).fill(undefined), ...every(70_000, 110_000, 2000, idle)];
  const r = run([alloc()], samples);
  assert.equal(r.crossed.length, 0);
  assert.equal((r.streaks.get(allocationKey(alloc())) as IdleStreak).since, 70_000);
  // With a gap the settings allow, the same samples make one streak that crosses.
  assert.equal(run([alloc()], samples, { ...SETTINGS, maxGapMs: 31_000 }).crossed.length, 1);
});

test('missing samples keep a streak as it was: its idle time grows only with samples', () => {
  const r = run([alloc()], [...every(0, 30_000, 2000, idle), undefined, undefined, undefined]);
  const s = r.streaks.get(allocationKey(alloc())) as IdleStreak;
  assert.deepEqual([s.since, s.lastAt], [0, 30_000]);
  // The same sample seen again (no heartbeat between two cycles) changes nothing.
  const again = stepIdle(r.streaks, [alloc()], () => idle(30_000), SETTINGS);
  assert.equal(again.changed.length, 0);
  assert.equal(again.streaks.get(allocationKey(alloc())), s);
});

test("samples from before the task started are the GPU's previous holder's", () => {
  const r = run([alloc({ startedAt: 50_000 })], every(0, 100_000, 2000, idle));
  assert.equal((r.streaks.get(allocationKey(alloc())) as IdleStreak).since, 50_000);
  assert.equal(r.crossed.length, 0, 'only 50 s since the start');
});

test('a fractional GPU shared by two tasks: the whole GPU idle makes both idle, any work neither', () => {
  const a = alloc({ jobId: '1', gpuMilli: 500 });
  const b = alloc({ jobId: '2', tenant: 'b', gpuMilli: 500 });
  const r = run([a, b], every(0, 70_000, 2000, idle));
  assert.deepEqual(r.crossed.map((s) => s.jobId).sort(), ['1', '2']);
  // Each counts its half: 70 s × 0.5 GPU.
  assert.deepEqual([...(r.last?.idleGpuSeconds.keys() ?? [])].sort(), ['a', 'b']);
  assert.equal(r.seconds, 70);
  const worked = run([a, b], [...every(0, 40_000, 2000, idle), { at: 42_000, utilization: 40, memoryUsedMib: 30_000, memoryMib: MEM }]);
  assert.equal(worked.streaks.size, 0);
});

test('a task that no longer holds the GPU ends its streak; another attempt of it starts afresh', () => {
  const r = run([alloc()], every(0, 70_000, 2000, idle));
  const gone = stepIdle(r.streaks, [], () => idle(72_000), SETTINGS);
  assert.equal(gone.ended.length, 1);
  assert.equal(gone.streaks.size, 0);
  const next = stepIdle(r.streaks, [alloc({ attempt: 1, startedAt: 71_000 })], () => idle(72_000), SETTINGS);
  assert.equal(next.ended.length, 1, 'attempt 0 is over');
  assert.equal(next.streaks.get(allocationKey(alloc({ attempt: 1 })))?.since, 72_000);
});

test('the same samples give the same streaks (no clock, no randomness)', () => {
  const samples = [...every(0, 50_000, 3000, idle), busy(51_000), ...every(52_000, 130_000, 3000, idle)];
  assert.deepEqual([...run([alloc()], samples).streaks], [...run([alloc()], samples).streaks]);
});
