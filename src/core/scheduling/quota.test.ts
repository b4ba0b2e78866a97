import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../rng.ts';
import type { QueueConfig } from './model.ts';
import { QuotaLedger } from './quota.ts';

test('a queue without a cohort stays within its nominal quota per model and in total', () => {
  const l = new QuotaLedger([{ name: 'a', nominalQuota: { V100: 4, '*': 6 } }]);
  assert.equal(l.check('a', 'V100', 4), null);
  assert.match(l.check('a', 'V100', 5) ?? '', /would use 5 V100 GPUs, nominal quota 4/);
  l.add('a', 'V100', 4);
  assert.equal(l.check('a', 'K80', 2), null);
  assert.match(l.check('a', 'K80', 3) ?? '', /would use 7 GPUs, nominal quota 6/);
  assert.match(l.check('b', 'K80', 1) ?? '', /does not exist/);
});

test('queues in a cohort borrow unused quota up to their borrowing and the lenders\' lending limits', () => {
  const l = new QuotaLedger([
    { name: 'a', cohort: 'c', nominalQuota: { V100: 4 }, borrowingLimit: { V100: 3 } },
    { name: 'b', cohort: 'c', nominalQuota: { V100: 4 }, lendingLimit: { V100: 2 } },
  ]);
  assert.equal(l.check('a', 'V100', 6), null, 'borrows 2 of b\'s lendable 2');
  assert.match(l.check('a', 'V100', 7) ?? '', /has 2 to lend/);
  l.add('b', 'V100', 3);
  assert.match(l.check('a', 'V100', 6) ?? '', /cohort 'c'/, 'b uses 3 of 4: only 1 left to lend');
  assert.equal(l.check('a', 'V100', 5), null);
  assert.equal(l.borrowed('a', 'V100'), 0);
  l.add('a', 'V100', 5);
  assert.equal(l.borrowed('a', 'V100'), 1);
  assert.match(l.check('b', 'V100', 1, true) ?? 'none', /none/, 'b may still use its own last GPU within nominal');
});

test('no queues configured means no quota', () => {
  const l = new QuotaLedger([]);
  assert.equal(l.enforced, false);
  assert.equal(l.check('anything', 'V100', 1000), null);
});

/** Kueue's rule written out plainly: every member's usage summed for every check. */
function plainCheck(queues: readonly QueueConfig[], used: ReadonlyMap<string, number>, queue: string, model: string, gpus: number, withinNominal: boolean): string | null {
  const q = queues.find((x) => x.name === queue) as QueueConfig;
  const cohort = queues.filter((m) => (m.cohort ?? `queue:${m.name}`) === (q.cohort ?? `queue:${q.name}`));
  const use = (name: string, key: string): number => used.get(`${name}/${key}`) ?? 0;
  let anyKey = false;
  for (const key of [model, '*']) {
    if (!cohort.some((m) => m.nominalQuota[key] !== undefined)) continue;
    anyKey = true;
    const nominal = q.nominalQuota[key] ?? 0;
    const after = use(queue, key) + gpus;
    if (after <= nominal) continue;
    if (withinNominal || q.cohort === undefined) return 'over nominal';
    const limit = q.borrowingLimit?.[key];
    if (limit !== undefined && after - nominal > limit) return 'over borrowing limit';
    let borrowed = 0;
    let lendable = 0;
    for (const m of cohort) {
      const n = m.nominalQuota[key] ?? 0;
      const u = use(m.name, key) + (m.name === queue ? gpus : 0);
      borrowed += Math.max(0, u - n);
      lendable += Math.min(m.lendingLimit?.[key] ?? n, Math.max(0, n - u));
    }
    if (borrowed > lendable) return 'cohort has too little to lend';
  }
  return anyKey ? null : 'no quota';
}

test('the ledger answers as the rule written out, over thousands of random admissions and releases', () => {
  const queues: QueueConfig[] = [
    { name: 'a', cohort: 'c', nominalQuota: { V100: 4, '*': 8 }, borrowingLimit: { V100: 3 } },
    { name: 'b', cohort: 'c', nominalQuota: { V100: 4, K80: 2 }, lendingLimit: { V100: 2 } },
    { name: 'd', cohort: 'c', nominalQuota: { K80: 6 }, lendingLimit: { K80: 1, '*': 3 } },
    { name: 'e', nominalQuota: { V100: 2 } },
  ];
  const kind = (r: string | null): string | null => (r === null ? null : /nominal quota/.test(r) ? 'over nominal' : /borrowing limit/.test(r) ? 'over borrowing limit' : /to lend/.test(r) ? 'cohort has too little to lend' : /no quota/.test(r) ? 'no quota' : r);
  const ledger = new QuotaLedger(queues);
  const used = new Map<string, number>();
  const rng = Rng.fromSeed(7);
  const held: { queue: string; model: string; gpus: number }[] = [];
  let admitted = 0;
  for (let step = 0; step < 5000; step++) {
    const queue = (queues[rng.int(0, queues.length - 1)] as QueueConfig).name;
    const model = ['V100', 'K80', 'P100'][rng.int(0, 2)] as string;
    const gpus = rng.int(1, 4);
    const withinNominal = rng.float() < 0.3;
    const answer = ledger.check(queue, model, gpus, withinNominal);
    assert.equal(kind(answer), plainCheck(queues, used, queue, model, gpus, withinNominal), `step ${step}: ${queue} +${gpus} ${model}`);
    if (answer === null && rng.float() < 0.6) {
      ledger.add(queue, model, gpus);
      for (const key of [model, '*']) used.set(`${queue}/${key}`, (used.get(`${queue}/${key}`) ?? 0) + gpus);
      held.push({ queue, model, gpus });
      admitted++;
    } else if (held.length > 0 && rng.float() < 0.5) {
      const { queue: q, model: m, gpus: g } = held.splice(rng.int(0, held.length - 1), 1)[0] as (typeof held)[number];
      ledger.remove(q, m, g);
      for (const key of [m, '*']) used.set(`${q}/${key}`, (used.get(`${q}/${key}`) ?? 0) - g);
    }
  }
  assert.ok(admitted > 500, `${admitted} admissions`);
});
