import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../core/rng.ts';
import { DAY, HOUR, localDay, localHour } from './usageRollup.ts';
import { planWindow } from './usageWindow.ts';

const M = 60_000;

test('a window is tiled by whole days, whole hours and at most two partial hours, up to the watermark', () => {
  const rng = Rng.fromSeed(3);
  for (const hours of [0, 8, 5.5, 5.75, -3.5, -12, 14]) {
    const off = hours * HOUR;
    for (let i = 0; i < 2000; i++) {
      const pick = (): number => {
        const t = 1_700_000_000_000 + Math.floor(rng.float() * 20 * 24 * 60) * M;
        const r = rng.float();
        return r < 0.2 ? localHour(t, off) : r < 0.3 ? localDay(t, off) : t;
      };
      const from = pick();
      const to = from + (rng.float() < 0.1 ? M : Math.floor(rng.float() * 10 * 24 * 60) * M + M);
      const through = localHour(pick(), off);
      const plan = planWindow(from, to, through, off);
      const end = Math.min(to, through);
      const pieces = [...(plan.days ? [{ ...plan.days, kind: 'day' }] : []), ...plan.hours.map((h) => ({ ...h, kind: 'hours' })), ...plan.edges.map((e) => ({ ...e, kind: 'edge' }))].sort((a, b) => a.from - b.from);
      const what = JSON.stringify({ hours, from, to, through, plan });
      if (from >= end) {
        assert.equal(pieces.length, 0, what);
        continue;
      }
      // Contiguous, non-empty, from `from` to min(to, through).
      assert.equal(pieces[0]?.from, from, what);
      assert.equal(pieces.at(-1)?.to, end, what);
      for (const [k, p] of pieces.entries()) {
        assert.ok(p.from < p.to, what);
        if (k > 0) assert.equal(p.from, pieces[k - 1]?.to, what);
      }
      assert.ok(plan.edges.length <= 2 && plan.hours.length <= 2, what);
      if (plan.days) assert.ok(localDay(plan.days.from, off) === plan.days.from && localDay(plan.days.to, off) === plan.days.to, what);
      for (const h of plan.hours) {
        assert.ok(localHour(h.from, off) === h.from && localHour(h.to, off) === h.to, what);
        const midnight = localDay(h.from, off) === h.from ? h.from : localDay(h.from, off) + DAY;
        assert.ok(midnight + DAY > h.to, `a whole day is read from the daily sums: ${what}`);
      }
      for (const e of plan.edges) {
        assert.equal(e.hour, localHour(e.from, off), what);
        assert.ok(e.to <= e.hour + HOUR && e.to - e.from < HOUR, what);
      }
    }
  }
});

test('examples: the edges of a window cut to the minute, and a window inside one hour', () => {
  const h = (n: number): number => n * HOUR;
  assert.deepEqual(planWindow(h(10) + 20 * M, h(10) + 50 * M, h(100), 0), { days: null, hours: [], edges: [{ hour: h(10), from: h(10) + 20 * M, to: h(10) + 50 * M }] });
  assert.deepEqual(planWindow(h(22) + 20 * M, h(50) + 5 * M, h(100), 0), {
    days: { from: h(24), to: h(48) },
    hours: [{ from: h(23), to: h(24) }, { from: h(48), to: h(50) }],
    edges: [{ hour: h(22), from: h(22) + 20 * M, to: h(23) }, { hour: h(50), from: h(50), to: h(50) + 5 * M }],
  });
  assert.deepEqual(planWindow(h(22), h(50) + 5 * M, h(30), 0), { days: null, hours: [{ from: h(22), to: h(30) }], edges: [] }, 'cut at the watermark');
  assert.deepEqual(planWindow(h(40), h(50), h(30), 0), { days: null, hours: [], edges: [] }, 'after the watermark: the records alone');
});
