/**
 * Folded pending entries (PendingJob.count): a scheduler that folds must plan an entry of k
 * identical jobs exactly as it plans the k jobs one by one — the same binds in the same order,
 * on the same GPUs, the same jobs started (JobBind.member), and the same reason for the jobs it
 * leaves waiting — over random clusters, queues and arrays (some of elastic gangs), in tide's fill
 * and replan cycles and in fifo's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../rng.ts';
import { gangJob, gpuNodes, schedulable } from './build.ts';
import { byJobId, jobGpus, jobId, type JobId, type JobProgress, type JobSpec, type QueueConfig } from './model.ts';
import type { JobBind, JobScheduler, PendingJob, RunningJob, SchedulePlan, SchedulerSnapshot } from './scheduler.ts';
import { getJobScheduler } from './policies/index.ts';

const fresh: JobProgress = { stepsDone: 0, attainedGpuSeconds: 0, runSeconds: 0, preemptions: 0 };

/** An array: `count` identical jobs with consecutive ids `<name>-000`, … */
interface ArraySpec {
  readonly name: string;
  readonly count: number;
  readonly spec: Omit<JobSpec, 'id'>;
}

const memberId = (a: ArraySpec, i: number): JobId => jobId(`${a.name}-${String(i).padStart(3, '0')}`);

interface Scenario {
  readonly nodes: SchedulerSnapshot['nodes'];
  readonly queues: readonly QueueConfig[];
  readonly background: readonly JobSpec[];
  readonly arrays: readonly ArraySpec[];
}

function scenario(seed: number): Scenario {
  const rng = Rng.fromSeed(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rng.float() * (hi - lo + 1));
  const nodes = schedulable([...gpuNodes('V100', int(2, 6), 4), ...gpuNodes('K80', int(1, 4), 8)]);
  const quotas = rng.float() < 0.5;
  const queues: QueueConfig[] = quotas
    ? [
        { name: 'a', cohort: 'c', nominalQuota: { '*': int(4, 16) } },
        { name: 'b', cohort: 'c', nominalQuota: { '*': int(4, 16) } },
      ]
    : [];
  const queue = (): string => (rng.float() < 0.5 ? 'a' : 'b');
  const throughput = (): Record<string, number> => (rng.float() < 0.3 ? { V100: 2 } : { V100: 2, K80: 1 });
  const background = Array.from({ length: int(5, 25) }, (_, i) =>
    gangJob({ id: `b${String(i).padStart(3, '0')}`, gpus: [1, 1, 2, 4, 8][int(0, 4)] as number, throughput: throughput(), totalSteps: 1000, submitTime: int(0, 50), queue: queue(), timeLimitSeconds: int(60, 36_000), tenant: rng.float() < 0.5 ? 'x' : 'y' }),
  );
  const arrays = Array.from({ length: int(1, 4) }, (_, i): ArraySpec => {
    const { id: _id, ...spec } = gangJob({ id: 'x', gpus: int(1, 4), throughput: throughput(), totalSteps: 1000, submitTime: int(0, 80), queue: queue(), timeLimitSeconds: int(60, 3_600), tenant: rng.float() < 0.5 ? 'x' : 'y' });
    // Some arrays' elements are elastic gangs (they start at half size when that is all that fits).
    const group = spec.groups[0] as JobSpec['groups'][number];
    const elastic = group.replicas > 1 && rng.float() < 0.3 ? { ...spec, groups: [{ ...group, minReplicas: Math.ceil(group.replicas / 2) }] } : spec;
    return { name: `a${i}`, count: int(2, 30), spec: elastic };
  });
  return { nodes, queues, background, arrays };
}

/** The jobs of the arrays still waiting (`waiting`: their indices, in order): one entry each (folded) or one job each. */
function arrayPending(arrays: readonly ArraySpec[], waiting: ReadonlyMap<string, readonly number[]>, folded: boolean, made: Map<string, PendingJob>): PendingJob[] {
  const out: PendingJob[] = [];
  for (const a of arrays) {
    const left = waiting.get(a.name) ?? [];
    if (left.length === 0) continue;
    const cached = (id: JobId, count: number): PendingJob => {
      const key = `${id}/${count}`;
      let p = made.get(key);
      if (!p) made.set(key, (p = { spec: { ...a.spec, id }, progress: fresh, ...(count > 1 ? { count } : {}) }));
      return p;
    };
    if (folded) out.push(cached(memberId(a, left[0] as number), left.length));
    else for (const i of left) out.push(cached(memberId(a, i), 1));
  }
  return out;
}

/** The array a job id belongs to, if any (an array's job that was preempted waits as a job of its own: none). */
const standalone = new Set<string>();
const arrayOf = (id: string): string | undefined => (standalone.has(id) ? undefined : /^(a\d+)-\d{3}$/.exec(id)?.[1]);

interface Run {
  readonly plans: SchedulePlan[];
  /** Binds with every array job named by its array. */
  readonly binds: string[][];
  /** Per cycle: the reason the first waiting job of each array got (code and message). */
  readonly arrayReasons: Map<string, string>[];
  /** Per cycle: reasons given for each array's waiting jobs (unfolded: one per job; folded: one per entry). */
  readonly arrayWaiting: Map<string, number>[];
  /** Per cycle: the other jobs' reasons (job and code). */
  readonly otherReasons: string[][];
  /** Per cycle: the jobs started, by id. */
  readonly started: string[][];
}

/** Three cycles (at 100 s, then `second` and `third` later): background jobs first, the arrays from the second on; binds start. */
function run(make: () => JobScheduler, sc: Scenario, folded: boolean, times: readonly number[]): Run {
  const sched = make();
  standalone.clear();
  const made = new Map<string, PendingJob>();
  const waitingOf = new Map(sc.arrays.map((a) => [a.name, Array.from({ length: a.count }, (_, i) => i)]));
  let running: RunningJob[] = [];
  let background = sc.background.map((spec): PendingJob => ({ spec, progress: fresh }));
  const plans: SchedulePlan[] = [];
  const binds: string[][] = [];
  const arrayReasons: Map<string, string>[] = [];
  const arrayWaiting: Map<string, number>[] = [];
  const otherReasons: string[][] = [];
  const startedIds: string[][] = [];
  times.forEach((now, cycle) => {
    const arrays = cycle === 0 ? [] : arrayPending(sc.arrays, waitingOf, folded, made);
    const pending = [...background, ...arrays].sort(byJobId);
    const plan = sched.cycle({ now, nodes: sc.nodes, running, pending, queues: sc.queues, seq: cycle + 1 });
    plans.push(plan);
    binds.push(plan.binds.map((b) => `${arrayOf(b.job) ?? b.job} ${b.model} ${JSON.stringify(b.bindings.map((t) => [t.nodeId, t.placement.gpus]))}`));
    // Who was bound: an entry's binds are its first jobs, in order.
    const started: { id: JobId; spec: JobSpec; bind: JobBind }[] = [];
    for (const b of plan.binds) {
      // A job of its own: a background job, a running one that moves, an array's job preempted and waiting again.
      const own = background.find((p) => p.spec.id === b.job) ?? running.find((r) => r.spec.id === b.job);
      const a = sc.arrays.find((x) => x.name === arrayOf(b.job));
      if (own || !a) {
        started.push({ id: b.job, spec: own?.spec as JobSpec, bind: b });
        continue;
      }
      // Folded: the bind names the entry and which of its waiting jobs.
      const left = waitingOf.get(a.name) as number[];
      // (An entry of one job is a job as any other: its bind names no member.)
      const i = folded ? (left[b.member ?? 0] as number) : Number(b.job.slice(-3));
      assert.ok(!folded || b.member !== undefined || left.length === 1, 'a bind of a folded entry names its job');
      const id = memberId(a, i);
      started.push({ id, spec: { ...a.spec, id }, bind: b });
    }
    const reasons = new Map<string, string>();
    const waiting = new Map<string, number>();
    const others: string[] = [];
    const runningIds = new Set(running.map((r) => r.spec.id as string));
    for (const r of plan.pending) {
      // A running job of an array that is preempted waits as a job of its own.
      const a = runningIds.has(r.job) ? undefined : arrayOf(r.job);
      if (a === undefined) others.push(`${r.job} ${r.code}`);
      else {
        // A folded entry whose count changed is new to the scheduler: a fill that passes over it gives
        // it a fresh reason where the first of the jobs one by one keeps its last. Those say the
        // same in other words: out of GPUs, after jobs ranked before it took some or not.
        const noRoom = /no model has (enough GPUs free for it|that many free)$/.test(r.message) && (r.code === 'lower-priority' || r.code === 'waiting-for-resources');
        if (!reasons.has(a)) reasons.set(a, noRoom ? 'no GPUs free' : `${r.code}: ${r.blockedBy === undefined ? r.message : '(behind)'}`);
        waiting.set(a, (waiting.get(a) ?? 0) + 1);
      }
    }
    arrayReasons.push(reasons);
    arrayWaiting.push(waiting);
    otherReasons.push(others);
    for (const s of started) {
      const a = arrayOf(s.id);
      if (a !== undefined) waitingOf.set(a, (waitingOf.get(a) as number[]).filter((i) => memberId(sc.arrays.find((x) => x.name === a) as ArraySpec, i) !== s.id));
    }
    startedIds.push(started.map((s) => s.id as string));
    const stopped = new Set(plan.preemptions.map((p) => p.job as string));
    const startedNow = new Set(started.map((s) => s.id as string));
    const stoppedRuns = running.filter((r) => stopped.has(r.spec.id) && !startedNow.has(r.spec.id));
    running = running.filter((r) => !stopped.has(r.spec.id) && !startedNow.has(r.spec.id));
    for (const s of started) running.push({ spec: s.spec, progress: fresh, bindings: s.bind.bindings, model: s.bind.model, startTime: now, lastCheckpointTime: now, gpus: jobGpus(s.spec) });
    running.sort(byJobId);
    for (const r of stoppedRuns) standalone.add(r.spec.id);
    background = [...background.filter((p) => !startedNow.has(p.spec.id)), ...stoppedRuns.map((r) => ({ spec: r.spec, progress: { ...fresh, preemptions: 1 } }))];
  });
  return { plans, binds, arrayReasons, arrayWaiting, otherReasons, started: startedIds };
}

for (const policy of ['tide', 'fifo', 'fifo-random']) {
  for (const [path, times] of [
    ['fill', [100, 130, 160]],
    ['replan', [100, 100 + 400, 100 + 800]],
  ] as const) {
    if (policy !== 'tide' && path === 'replan') continue;
    test(`${policy} plans a folded entry of identical jobs as it plans the jobs one by one (${path} cycles)`, () => {
      const factory = getJobScheduler(policy === 'fifo-random' ? 'fifo' : policy);
      assert.ok(factory);
      let boundArrayJobs = 0;
      let leftWaiting = 0;
      for (let seed = 1; seed <= 300; seed++) {
        const sc = scenario(seed);
        const make = (): JobScheduler => factory({ rng: Rng.fromSeed(seed), placement: 'bestfit', options: policy === 'tide' ? { starvationSeconds: 1e9 } : policy === 'fifo-random' ? { models: 'random' } : {} });
        assert.equal(make().folds, true);
        const one = run(make, sc, false, times);
        const folded = run(make, sc, true, times);
        for (let c = 0; c < times.length; c++) {
          assert.deepEqual(folded.binds[c], one.binds[c], `seed ${seed}, cycle ${c}: the same binds`);
          assert.deepEqual(folded.started[c], one.started[c], `seed ${seed}, cycle ${c}: the same jobs started`);
          assert.deepEqual(folded.plans[c]?.preemptions, one.plans[c]?.preemptions, `seed ${seed}, cycle ${c}: the same preemptions`);
          // A folded entry whose count changed is new to tide, and a fill that passes over it says so
          // afresh, where the first of the jobs one by one keeps whatever it was told last.
          for (const [a, why] of one.arrayReasons[c] ?? []) {
            const got = folded.arrayReasons[c]?.get(a);
            if (got !== 'no GPUs free' || path !== 'fill') assert.equal(got, why, `seed ${seed}, cycle ${c}: the same reason for array ${a}'s waiting jobs`);
          }
          assert.deepEqual([...(folded.arrayReasons[c]?.keys() ?? [])], [...(one.arrayReasons[c]?.keys() ?? [])]);
          for (const [a, n] of folded.arrayWaiting[c] ?? []) assert.equal(n, 1, `seed ${seed}, cycle ${c}: one reason for array ${a}'s entry`);
          assert.deepEqual(folded.otherReasons[c], one.otherReasons[c], `seed ${seed}, cycle ${c}: the other jobs' reasons`);
          boundArrayJobs += (folded.binds[c] ?? []).filter((b) => /^a\d+ /.test(b)).length;
          for (const n of one.arrayWaiting[c]?.values() ?? []) leftWaiting += n;
        }
      }
      // The scenarios exercise both: arrays partly started and arrays left waiting.
      assert.ok(boundArrayJobs > 100, `array jobs bound: ${boundArrayJobs}`);
      assert.ok(leftWaiting > 100, `array jobs left waiting: ${leftWaiting}`);
    });
  }
}

test('a folded entry of 10,000 jobs costs tide one waiting-table entry: it starts what fits and gives one reason for the rest', () => {
  const factory = getJobScheduler('tide');
  assert.ok(factory);
  const sched = factory({ rng: Rng.fromSeed(1), placement: 'bestfit' });
  const nodes = schedulable(gpuNodes('H100', 100, 8));
  const { id: _id, ...spec } = gangJob({ id: 'x', gpus: 1, throughput: { H100: 1 }, totalSteps: 1, timeLimitSeconds: 60 });
  const plan = sched.cycle({ now: 0, nodes, running: [], pending: [{ spec: { ...spec, id: jobId('5') }, progress: fresh, count: 10_000 }], queues: [] });
  assert.equal(plan.binds.length, 800);
  assert.ok(plan.binds.every((b) => b.job === '5'));
  assert.equal(new Set(plan.binds.map((b) => `${b.bindings[0]?.nodeId}/${b.bindings[0]?.placement.gpus.join()}`)).size, 800, 'every GPU once');
  assert.equal(plan.pending.length, 1);
  assert.equal(plan.pending[0]?.job, '5');
});
