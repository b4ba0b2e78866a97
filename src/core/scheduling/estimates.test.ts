import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../rng.ts';
import { AvailabilityProfile, RunningEnds } from './estimates.ts';

test('the earliest start waits until enough GPUs stay free for the whole run', () => {
  const p = new AvailabilityProfile(100);
  p.setFree('V100', 2);
  p.release('V100', 2, 200);
  p.release('V100', 4, 300);
  assert.equal(p.earliest('V100', 2, 1000), 100);
  assert.equal(p.earliest('V100', 4, 1000), 200);
  assert.equal(p.earliest('V100', 8, 50), 300);
  assert.equal(p.earliest('V100', 9, 50), Infinity);
  assert.equal(p.earliest('K80', 1, 10), Infinity);
});

test('reservations push later jobs back, and a gap too short for a run is skipped', () => {
  const p = new AvailabilityProfile(0);
  p.setFree('V100', 4);
  p.reserve('V100', 4, 100, 100);
  assert.equal(p.earliest('V100', 4, 50), 0, 'fits before the reservation');
  assert.equal(p.earliest('V100', 4, 150), 200, 'too long for the gap: after the reservation');
  assert.equal(p.minFree('V100', 0, 300), 0);
});

/** The profile as first written: every step in one sorted list, walked in full per query. */
class ReferenceProfile {
  private readonly free = new Map<string, number>();
  private readonly steps = new Map<string, { time: number; delta: number }[]>();
  constructor(readonly now: number) {}
  setFree(m: string, g: number): void {
    this.free.set(m, g);
  }
  release(m: string, g: number, time: number): void {
    if (!Number.isFinite(time) || g === 0) return;
    const s = this.steps.get(m) ?? [];
    s.push({ time: Math.max(time, this.now), delta: g });
    s.sort((a, b) => a.time - b.time);
    this.steps.set(m, s);
  }
  earliest(m: string, gpus: number, duration: number): number {
    const times = [this.now];
    const levels = [this.free.get(m) ?? 0];
    for (const st of this.steps.get(m) ?? []) {
      const last = levels.length - 1;
      if (st.time <= times[last]!) levels[last] = levels[last]! + st.delta;
      else {
        times.push(st.time);
        levels.push(levels[last]! + st.delta);
      }
    }
    let i = 0;
    while (i < times.length) {
      if (levels[i]! < gpus) {
        i++;
        continue;
      }
      const start = times[i]!;
      let j = i + 1;
      while (j < times.length && times[j]! < start + duration && levels[j]! >= gpus) j++;
      if (j >= times.length || times[j]! >= start + duration) return start;
      i = j + 1;
    }
    return Infinity;
  }
  reserve(m: string, gpus: number, start: number, duration: number): void {
    if (start <= this.now) this.free.set(m, (this.free.get(m) ?? 0) - gpus);
    else this.addStep(m, start, -gpus);
    if (Number.isFinite(duration)) this.addStep(m, Math.max(start, this.now) + duration, gpus);
  }
  minFree(m: string, from: number, to: number): number {
    let level = this.free.get(m) ?? 0;
    const steps = this.steps.get(m) ?? [];
    let i = 0;
    for (; i < steps.length && steps[i]!.time <= from; i++) level += steps[i]!.delta;
    let min = level;
    for (; i < steps.length && steps[i]!.time < to; i++) {
      level += steps[i]!.delta;
      if (level < min) min = level;
    }
    return min;
  }
  private addStep(m: string, time: number, delta: number): void {
    const s = this.steps.get(m) ?? [];
    let i = s.length;
    while (i > 0 && s[i - 1]!.time > time) i--;
    s.splice(i, 0, { time, delta });
    this.steps.set(m, s);
  }
}

test('a profile on a shared base of running jobs answers exactly as one that lists every release', () => {
  const rng = Rng.fromSeed(3);
  for (let round = 0; round < 300; round++) {
    const now = rng.int(0, 5) * 1000 + rng.float() * 1e6;
    const ends = new RunningEnds();
    const jobs: { job: object; gpus: number; start: number; left: number }[] = [];
    const count = rng.int(0, 40);
    for (let k = 0; k < count; k++) {
      // Coarse times make equal ends, and ends before now, common.
      const start = now - rng.int(0, 20) * 100;
      const left = rng.int(0, 8) === 0 ? Infinity : rng.int(0, 40) * 100;
      jobs.push({ job: {}, gpus: rng.int(0, 3) === 0 ? 0 : rng.int(1, 8), start, left });
    }
    // Starts and stops arrive in any order; the removed ones must not count.
    for (const j of jobs) ends.add(j.job, 'V100', j.gpus, j.start, j.left);
    const gone = jobs.filter(() => rng.int(0, 4) === 0);
    for (const j of gone) ends.remove(j.job, 'V100', j.gpus, j.start, j.left);
    const free = rng.int(0, 6);
    const ref = new ReferenceProfile(now);
    const plain = new AvailabilityProfile(now);
    const based = new AvailabilityProfile(now);
    for (const p of [ref, plain, based]) p.setFree('V100', free);
    for (const j of jobs) {
      if (gone.includes(j)) continue;
      const end = now + Math.max(0, j.left - (now - j.start));
      ref.release('V100', j.gpus, end);
      plain.release('V100', j.gpus, end);
    }
    const base = ends.base('V100', now);
    if (base) based.setBase('V100', base);
    // The same base serves a later instant while nothing started or stopped.
    const later = now + rng.int(0, 30) * 100;
    assert.equal(ends.base('V100', later), base);
    const laterRef = new ReferenceProfile(later);
    const laterBased = new AvailabilityProfile(later);
    for (const p of [laterRef, laterBased]) p.setFree('V100', free);
    for (const j of jobs) if (!gone.includes(j)) laterRef.release('V100', j.gpus, now + Math.max(0, j.left - (now - j.start)));
    if (base) laterBased.setBase('V100', base);
    for (let q = 0; q < 10; q++) {
      const gpus = rng.int(1, 12);
      const duration = rng.int(0, 6) === 0 ? Infinity : rng.int(1, 30) * 100;
      assert.equal(laterBased.earliest('V100', gpus, duration), laterRef.earliest('V100', gpus, duration), `round ${round} later query ${q}`);
      const from = later + rng.int(0, 30) * 100;
      const to = from + rng.int(1, 30) * 100;
      assert.equal(laterBased.minFree('V100', from, to), laterRef.minFree('V100', from, to));
    }
    for (let q = 0; q < 30; q++) {
      const gpus = rng.int(1, 12);
      const duration = rng.int(0, 6) === 0 ? Infinity : rng.int(1, 30) * 100;
      const want = ref.earliest('V100', gpus, duration);
      assert.equal(plain.earliest('V100', gpus, duration), want, `round ${round} query ${q}`);
      assert.equal(based.earliest('V100', gpus, duration), want, `round ${round} query ${q} (base)`);
      const from = now + rng.int(0, 30) * 100;
      const to = from + rng.int(1, 30) * 100;
      assert.equal(based.minFree('V100', from, to), ref.minFree('V100', from, to));
      if (Number.isFinite(want)) for (const p of [ref, plain, based]) p.reserve('V100', gpus, want, duration);
      else if (rng.int(0, 1) === 0) {
        // A reservation that does not fit makes the level dip below zero.
        const start = now + rng.int(0, 30) * 100;
        for (const p of [ref, plain, based]) p.reserve('V100', gpus, start, duration);
      }
    }
  }
});
