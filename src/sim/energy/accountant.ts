/**
 * Simulated energy accounting: a listener on the simulator's events (SimOptions.onEvent) that
 * prices every joule. Per task attempt: GPU-seconds by model, energy (J) at the power the job
 * runs at (its model's typical load, under the cap its bind carries; GPUs held but idle while the
 * job restarts draw idle-with-memory power), yuan and gCO₂e by hour of day (pricing.ts); summed
 * per job, tenant and queue. Beside the jobs: the idle power of powered GPUs no job holds (and
 * the free share of partly held ones), and the nodes' base power (suspended nodes draw
 * `suspendedWatts`; lost nodes nothing).
 *
 * Rule for shared GPUs: a task holding `m` milli-GPU of a device is charged m/1000 of the
 * device's idle-with-memory power plus its own dynamic power scaled by m/1000; the free share's
 * idle-with-memory power is idle energy.
 *
 * Accounting closes: the attempts' energy (each computed from its own start, restart and end)
 * plus idle plus base equals the nodes' energy (each node integrated on its own from its
 * devices' states). `report()` throws when they differ by more than 0.1 %.
 */
import type { NodeSpec } from '../../core/model.ts';
import { capEffect, gpuPower, jobWatts, nodeBaseWatts, type PowerModel } from '../../core/energy/powerModel.ts';
import { energyCharge, gpuTimeYuan, type EnergyPrices } from '../../core/energy/pricing.ts';
import { CPU_MODEL, jobGpus, type JobSpec } from '../../core/scheduling/model.ts';
import type { JobBind } from '../../core/scheduling/scheduler.ts';
import type { EnergyPlan, PowerCappedBind } from '../../core/scheduling/stages/stage.ts';
import type { SimEvent } from '../simulator.ts';

export interface AccountingOptions {
  readonly nodes: readonly NodeSpec[];
  readonly power: PowerModel;
  /** Prices on the simulation's clock (t = 0 is local midnight: `simulationPrices`). */
  readonly prices: EnergyPrices;
  /** A job's work is GPU-hours of its work on this model (default, or when the job cannot run there: its fastest). */
  readonly workModel?: string;
  /** Width of the power-over-time buckets (default 3600 s). */
  readonly bucketSeconds?: number;
  /** Keep one record per attempt, and totals per job, in the report (default false: per tenant, queue and model only). */
  readonly keepAttempts?: boolean;
}

export type AttemptEnd = 'finished' | 'preempted' | 'timedout' | 'running';

export interface AttemptRecord {
  readonly job: string;
  readonly attempt: number;
  readonly tenant: string;
  readonly queue: string;
  readonly model: string;
  /** Power limit as a fraction of TDP (1: none). */
  readonly powerCap: number;
  readonly start: number;
  readonly end: number;
  readonly endedAs: AttemptEnd;
  readonly gpuSeconds: number;
  readonly energyJ: number;
  /** Of energyJ: GPUs held while the job restarted (allocated but unused). */
  readonly heldIdleJ: number;
  readonly energyYuan: number;
  readonly gpuYuan: number;
  readonly co2Grams: number;
  /** Work done that counted (reference GPU-hours). */
  readonly work: number;
}

export interface UsageTotals {
  attempts: number;
  gpuSeconds: number;
  energyJ: number;
  heldIdleJ: number;
  energyYuan: number;
  gpuYuan: number;
  co2Grams: number;
  work: number;
}

export interface PowerSample {
  /** Bucket start, hours. */
  readonly hour: number;
  /** Average watts in the bucket: jobs (held-idle included), idle GPUs, node base. */
  readonly jobsW: number;
  readonly idleW: number;
  readonly baseW: number;
}

export interface EnergyReport {
  /** Seconds accounted (0 to the report's time). */
  readonly seconds: number;
  /** IT energy (J): the nodes' own integrals, and its parts. */
  readonly nodeEnergyJ: number;
  readonly jobsEnergyJ: number;
  readonly heldIdleEnergyJ: number;
  readonly idleEnergyJ: number;
  readonly baseEnergyJ: number;
  /** |jobs + idle + base − nodes| ÷ nodes. */
  readonly closureError: number;
  /** At the meter (IT energy × PUE), kWh. */
  readonly energyKwh: number;
  readonly idleEnergyKwh: number;
  readonly baseEnergyKwh: number;
  /** Energy yuan (all of it, idle and base included) plus GPU-time yuan of the jobs. */
  readonly costYuan: number;
  readonly co2Kg: number;
  /** Reference GPU-hours of work done. */
  readonly work: number;
  readonly byTenant: Readonly<Record<string, UsageTotals>>;
  readonly byQueue: Readonly<Record<string, UsageTotals>>;
  readonly byModel: Readonly<Record<string, { gpuSeconds: number; energyJ: number }>>;
  /** Of the jobs' energy, the share run under a power cap, and the mean cap (GPU-second weighted). */
  readonly cappedShare: number;
  readonly meanCap: number;
  readonly attempts?: readonly AttemptRecord[];
  /** With `keepAttempts`: the totals per job over its attempts. */
  readonly byJob?: Readonly<Record<string, UsageTotals>>;
  readonly power: { readonly bucketSeconds: number; readonly samples: readonly PowerSample[] };
}

export class AccountingError extends Error {
  override readonly name = 'AccountingError';
}

/** A bind's speed under its power cap (SimOptions.speedOf): the cap curve's relative throughput. */
export function capSpeed(power: PowerModel): (bind: JobBind) => number {
  return (bind: PowerCappedBind): number => (bind.powerCap === undefined || bind.powerCap >= 1 || bind.model === CPU_MODEL ? 1 : capEffect(gpuPower(power, bind.model), bind.powerCap).throughput);
}

interface Attempt {
  readonly spec: JobSpec;
  readonly n: number;
  readonly model: string;
  readonly cap: number;
  readonly start: number;
  readonly workStart: number;
  /** The devices it holds and its share of each (milli ÷ 1000). */
  readonly devices: readonly number[];
  readonly shares: readonly number[];
  /** Σ shares (GPU equivalents). */
  readonly gpus: number;
  /** Σ share × idle-with-memory W (restart phase) and Σ share × job W (work phase). */
  readonly heldW: number;
  readonly workW: number;
  /** Steps per second while working. */
  readonly rate: number;
  working: boolean;
  closed: boolean;
}

interface JobState {
  readonly spec: JobSpec;
  /** Reference GPU-hours of work per step. */
  readonly perStep: number;
  attempts: number;
  open: Attempt | undefined;
  /** Steps counted as work so far. */
  credited: number;
}

const newTotals = (): UsageTotals => ({ attempts: 0, gpuSeconds: 0, energyJ: 0, heldIdleJ: 0, energyYuan: 0, gpuYuan: 0, co2Grams: 0, work: 0 });

export class EnergyAccountant {
  private readonly power: PowerModel;
  private readonly prices: EnergyPrices;
  private readonly bucket: number;
  // Nodes and devices (device g of node i is gpuOffset[i] + d).
  private readonly baseW: Float64Array;
  private readonly powered: Uint8Array;
  private readonly down: Uint8Array;
  private readonly readyAt: Float64Array;
  private readonly gpuOffset: Int32Array;
  private readonly nodeOf: Int32Array;
  private readonly idleW: Float64Array;
  private readonly idleMemW: Float64Array;
  private readonly milli: Float64Array;
  /** Σ share × (task W − idle-with-memory W) per device. */
  private readonly dynW: Float64Array;
  private readonly nodeW: Float64Array;
  private readonly nodeJ: Float64Array;
  private readonly nodeT: Float64Array;
  // Aggregates (W) and their integrals (J).
  private t = 0;
  private jobsW = 0;
  private heldW = 0;
  private idleAggW = 0;
  private baseAggW = 0;
  private jobsAggJ = 0;
  private heldAggJ = 0;
  private idleJ = 0;
  private baseJ = 0;
  /** Idle and base joules per hour of the run. */
  private readonly overheadByHour: number[] = [];
  private readonly buckets: number[][] = [];
  // Jobs.
  /** Jobs submitted and not yet ended. */
  private readonly jobs = new Map<string, JobState>();
  /** Restart phases ending, as a binary heap on workStart. */
  private readonly phaseHeap: Attempt[] = [];
  private readonly attempts: AttemptRecord[] = [];
  private readonly byTenant = new Map<string, UsageTotals>();
  private readonly byQueue = new Map<string, UsageTotals>();
  private readonly byModel = new Map<string, { gpuSeconds: number; energyJ: number }>();
  private readonly byJob = new Map<string, UsageTotals>();
  private attemptsJ = 0;
  private attemptsHeldJ = 0;
  private attemptsYuan = 0;
  private attemptsCo2 = 0;
  private work = 0;
  private cappedJ = 0;
  private capGpuSeconds = 0;
  private capWeighted = 0;

  constructor(private readonly opts: AccountingOptions) {
    this.power = opts.power;
    this.prices = opts.prices;
    this.bucket = opts.bucketSeconds ?? 3600;
    const nodes = opts.nodes;
    const n = nodes.length;
    this.baseW = new Float64Array(n);
    this.powered = new Uint8Array(n).fill(1);
    this.down = new Uint8Array(n);
    this.readyAt = new Float64Array(n).fill(-Infinity);
    this.gpuOffset = new Int32Array(n + 1);
    this.nodeW = new Float64Array(n);
    this.nodeJ = new Float64Array(n);
    this.nodeT = new Float64Array(n);
    let g = 0;
    nodes.forEach((node, i) => {
      this.gpuOffset[i] = g;
      g += node.gpus.length;
      this.baseW[i] = nodeBaseWatts(this.power, node);
    });
    this.gpuOffset[n] = g;
    this.nodeOf = new Int32Array(g);
    this.idleW = new Float64Array(g);
    this.idleMemW = new Float64Array(g);
    this.milli = new Float64Array(g);
    this.dynW = new Float64Array(g);
    nodes.forEach((node, i) => {
      node.gpus.forEach((model, d) => {
        const k = (this.gpuOffset[i] as number) + d;
        const p = gpuPower(this.power, model);
        this.nodeOf[k] = i;
        this.idleW[k] = p.idleWatts;
        this.idleMemW[k] = p.idleWithMemoryWatts;
      });
    });
    for (let i = 0; i < n; i++) {
      this.nodeW[i] = this.nodePower(i);
      this.baseAggW += this.baseW[i] as number;
      for (let k = this.gpuOffset[i] as number; k < (this.gpuOffset[i + 1] as number); k++) this.idleAggW += this.idleW[k] as number;
    }
  }

  /** Pass to SimOptions.onEvent (bound). */
  readonly onEvent = (e: SimEvent): void => {
    switch (e.type) {
      case 'job:submitted':
        this.jobs.set(e.job.id, { spec: e.job, perStep: this.perStepOf(e.job), attempts: 0, open: undefined, credited: 0 });
        return;
      case 'cycle':
        this.advance(e.time);
        this.applyPlan(e.plan as EnergyPlan, e.time);
        return;
      case 'job:preempted':
        this.advance(e.time);
        this.close(e.job.id, e.time, 'preempted', e.lostSteps);
        return;
      case 'job:finished':
      case 'job:timedout': {
        this.advance(e.time);
        this.close(e.job.id, e.time, e.type === 'job:finished' ? 'finished' : 'timedout', 0, e.type === 'job:finished');
        this.jobs.delete(e.job.id);
        return;
      }
      case 'node:lost':
      case 'node:repaired': {
        this.advance(e.time);
        const i = this.opts.nodes.findIndex((n) => n.id === e.node);
        if (i < 0) return;
        this.changeNode(i, e.time, () => void (this.down[i] = e.type === 'node:lost' ? 1 : 0));
        return;
      }
      default:
        return;
    }
  };

  /** What a node draws now, from its devices' states (the independent side of closure). */
  private nodePower(i: number): number {
    if (this.down[i]) return 0;
    if (!this.powered[i]) return this.power.node.suspendedWatts;
    let w = this.baseW[i] as number;
    for (let k = this.gpuOffset[i] as number; k < (this.gpuOffset[i + 1] as number); k++) w += (this.milli[k] as number) > 0 ? (this.idleMemW[k] as number) + (this.dynW[k] as number) : (this.idleW[k] as number);
    return w;
  }

  /** Node i's idle and base watts, as the aggregates count them. */
  private nodeOverhead(i: number): { idle: number; base: number } {
    if (this.down[i]) return { idle: 0, base: 0 };
    if (!this.powered[i]) return { idle: 0, base: this.power.node.suspendedWatts };
    let idle = 0;
    for (let k = this.gpuOffset[i] as number; k < (this.gpuOffset[i + 1] as number); k++) idle += this.deviceIdle(k);
    return { idle, base: this.baseW[i] as number };
  }

  private deviceIdle(k: number): number {
    const m = this.milli[k] as number;
    return m > 0 ? (1 - m / 1000) * (this.idleMemW[k] as number) : (this.idleW[k] as number);
  }

  /** Changes node i's state through `change`, keeping the node's integral and the aggregates right. */
  private changeNode(i: number, t: number, change: () => void): void {
    this.settleNode(i, t);
    const before = this.nodeOverhead(i);
    change();
    const after = this.nodeOverhead(i);
    this.idleAggW += after.idle - before.idle;
    this.baseAggW += after.base - before.base;
    this.nodeW[i] = this.nodePower(i);
  }

  /**
   * Changes device k's held milli-GPU and dynamic watts by the deltas at time t, keeping its
   * node's integral (from the device's own power before and after) and the idle aggregate right.
   * Devices only change on powered nodes (a bind to a sleeping node fails the run first).
   */
  private changeDevice(k: number, t: number, milli: number, dyn: number): void {
    const i = this.nodeOf[k] as number;
    this.settleNode(i, t);
    const beforeW = this.devicePower(k);
    const beforeIdle = this.deviceIdle(k);
    let m = (this.milli[k] as number) + milli;
    let d = (this.dynW[k] as number) + dyn;
    if (m < 1e-6) {
      m = 0;
      d = 0;
    }
    this.milli[k] = m;
    this.dynW[k] = d;
    this.nodeW[i] = (this.nodeW[i] as number) + this.devicePower(k) - beforeW;
    this.idleAggW += this.deviceIdle(k) - beforeIdle;
  }

  private devicePower(k: number): number {
    return (this.milli[k] as number) > 0 ? (this.idleMemW[k] as number) + (this.dynW[k] as number) : (this.idleW[k] as number);
  }

  private settleNode(i: number, t: number): void {
    this.nodeJ[i] = (this.nodeJ[i] as number) + (this.nodeW[i] as number) * (t - (this.nodeT[i] as number));
    this.nodeT[i] = t;
  }

  /** Integrates the aggregates to `to`, ending restart phases on the way. */
  private advance(to: number): void {
    while (this.phaseHeap.length > 0 && (this.phaseHeap[0] as Attempt).workStart <= to) {
      const a = this.popPhase();
      if (a.closed || a.working) continue;
      this.integrate(a.workStart);
      this.startWork(a, a.workStart);
    }
    this.integrate(to);
  }

  private integrate(to: number): void {
    const dt = to - this.t;
    if (!(dt > 0)) return;
    const from = this.t;
    this.jobsAggJ += this.jobsW * dt;
    this.heldAggJ += this.heldW * dt;
    this.idleJ += this.idleAggW * dt;
    this.baseJ += this.baseAggW * dt;
    // Idle and base energy by hour of the run, priced at the end (the tariff is constant within an hour).
    const overheadW = this.idleAggW + this.baseAggW;
    for (let s = from; s < to; ) {
      const h = Math.floor(s / 3600);
      const end = Math.min(to, (h + 1) * 3600);
      this.overheadByHour[h] = (this.overheadByHour[h] ?? 0) + overheadW * (end - s);
      s = end;
    }
    // Power-over-time buckets.
    for (let s = from; s < to; ) {
      const b = Math.floor(s / this.bucket);
      const end = Math.min(to, (b + 1) * this.bucket);
      const row = (this.buckets[b] ??= [0, 0, 0]);
      const w = end - s;
      row[0] = (row[0] as number) + this.jobsW * w;
      row[1] = (row[1] as number) + this.idleAggW * w;
      row[2] = (row[2] as number) + this.baseAggW * w;
      s = end;
    }
    this.t = to;
  }

  private applyPlan(plan: EnergyPlan, t: number): void {
    for (const c of plan.nodePower ?? []) {
      if (c.state === 'off') {
        for (let k = this.gpuOffset[c.node] as number; k < (this.gpuOffset[c.node + 1] as number); k++) {
          if ((this.milli[k] as number) > 0) throw new AccountingError(`node ${this.opts.nodes[c.node]?.id} powered down at t=${t} with a task on it`);
        }
      }
      this.changeNode(c.node, t, () => {
        this.powered[c.node] = c.state === 'on' ? 1 : 0;
        this.readyAt[c.node] = c.readyAt;
      });
    }
    for (const b of plan.binds) this.openAttempt(b, t);
  }

  private openAttempt(b: PowerCappedBind, t: number): void {
    const job = this.jobs.get(b.job);
    if (!job) throw new AccountingError(`bind of job ${b.job}, which was never submitted`);
    const spec = job.spec;
    const n = ++job.attempts;
    const cap = b.powerCap ?? 1;
    const devices: number[] = [];
    const shares: number[] = [];
    let gpus = 0;
    let heldW = 0;
    let workW = 0;
    const cpuOnly = b.model === CPU_MODEL;
    const profile = cpuOnly ? undefined : gpuPower(this.power, b.model);
    const perGpuWork = profile ? jobWatts(profile, cap) : 0;
    for (const binding of b.bindings) {
      const node = binding.placement.node;
      if (!this.powered[node] || this.down[node] || (this.readyAt[node] as number) > t) throw new AccountingError(`job ${b.job} bound at t=${t} to node ${binding.nodeId}, which is powered down or still waking`);
      const share = binding.placement.gpuMilli / 1000;
      for (const d of binding.placement.gpus) {
        const k = (this.gpuOffset[node] as number) + d;
        devices.push(k);
        shares.push(share);
        gpus += share;
        heldW += share * (this.idleMemW[k] as number);
        workW += share * perGpuWork;
        this.changeDevice(k, t, share * 1000, 0);
      }
    }
    // Restart cost as the simulator charges it: every start after a preemption.
    const restart = n !== 1 ? (spec.restartCostSeconds ?? 0) : 0;
    const a: Attempt = { spec, n, model: b.model, cap, start: t, workStart: t + restart, devices, shares, gpus, heldW, workW, rate: this.rateOf(spec, b, cap), working: false, closed: false };
    job.open = a;
    this.jobsW += heldW;
    this.heldW += heldW;
    if (restart > 0) this.pushPhase(a);
    else this.startWork(a, t);
  }

  /** Steps per second of the attempt, as the simulator runs it (throughput × replicas bound ÷ all × cap speed). */
  private rateOf(spec: JobSpec, b: PowerCappedBind, cap: number): number {
    const full = spec.throughput[b.model] ?? 0;
    let want = 0;
    for (const g of spec.groups) want += g.replicas;
    const speed = cap >= 1 || b.model === CPU_MODEL ? 1 : capEffect(gpuPower(this.power, b.model), cap).throughput;
    return want > 0 ? ((full * b.bindings.length) / want) * speed : 0;
  }

  private startWork(a: Attempt, t: number): void {
    a.working = true;
    // Each device's share of the job's power above idle-with-memory (one model: the same per GPU).
    const perGpu = a.gpus > 0 ? (a.workW - a.heldW) / a.gpus : 0;
    for (let i = 0; i < a.devices.length; i++) this.changeDevice(a.devices[i] as number, t, 0, (a.shares[i] as number) * perGpu);
    this.jobsW += a.workW - a.heldW;
    this.heldW -= a.heldW;
  }

  private close(id: string, t: number, how: AttemptEnd, lostSteps: number, done = false): void {
    const job = this.jobs.get(id);
    const a = job?.open;
    if (!job || !a) return;
    job.open = undefined;
    if (!a.working && a.workStart <= t) this.startWork(a, a.workStart);
    a.closed = true;
    const workFrom = Math.min(t, a.workStart);
    const heldJ = a.heldW * (workFrom - a.start);
    const workJ = a.workW * (t - workFrom);
    const perGpu = a.working && a.gpus > 0 ? (a.workW - a.heldW) / a.gpus : 0;
    for (let i = 0; i < a.devices.length; i++) {
      const share = a.shares[i] as number;
      this.changeDevice(a.devices[i] as number, t, -share * 1000, -share * perGpu);
    }
    if (a.working) this.jobsW -= a.workW;
    else {
      this.jobsW -= a.heldW;
      this.heldW -= a.heldW;
    }
    // Work that counted: steps at the attempt's rate while working, less what a stop lost.
    const before = job.credited;
    let steps = Math.max(0, a.rate * (t - workFrom) - lostSteps);
    steps = done ? Math.max(0, a.spec.totalSteps - before) : Math.min(steps, Math.max(0, a.spec.totalSteps - before));
    job.credited = before + steps;
    this.record(a, t, how, heldJ, workJ, steps * job.perStep);
  }

  private record(a: Attempt, t: number, how: AttemptEnd, heldJ: number, workJ: number, units: number): void {
    const workFrom = Math.min(t, a.workStart);
    const held = heldJ > 0 ? energyCharge(this.prices, heldJ, a.start, workFrom) : undefined;
    const work = energyCharge(this.prices, workJ, workFrom, t);
    const gpuSeconds = a.gpus * (t - a.start);
    const energyJ = heldJ + workJ;
    const gpuYuan = a.model === CPU_MODEL ? 0 : gpuTimeYuan(this.prices, a.model, gpuSeconds);
    const energyYuan = (held?.energyYuan ?? 0) + work.energyYuan;
    const co2Grams = (held?.co2Grams ?? 0) + work.co2Grams;
    if (this.opts.keepAttempts) {
      this.addTo(this.byJob, a.spec.id, gpuSeconds, energyJ, heldJ, energyYuan, gpuYuan, co2Grams, units);
      this.attempts.push({ job: a.spec.id, attempt: a.n, tenant: a.spec.tenant, queue: a.spec.queue, model: a.model, powerCap: a.cap, start: a.start, end: t, endedAs: how, gpuSeconds, energyJ, heldIdleJ: heldJ, energyYuan, gpuYuan, co2Grams, work: units });
    }
    this.addTo(this.byTenant, a.spec.tenant, gpuSeconds, energyJ, heldJ, energyYuan, gpuYuan, co2Grams, units);
    this.addTo(this.byQueue, a.spec.queue, gpuSeconds, energyJ, heldJ, energyYuan, gpuYuan, co2Grams, units);
    let m = this.byModel.get(a.model);
    if (!m) this.byModel.set(a.model, (m = { gpuSeconds: 0, energyJ: 0 }));
    m.gpuSeconds += gpuSeconds;
    m.energyJ += energyJ;
    this.attemptsJ += energyJ;
    this.attemptsHeldJ += heldJ;
    this.attemptsYuan += energyYuan + gpuYuan;
    this.attemptsCo2 += co2Grams;
    this.work += units;
    if (a.cap < 1) this.cappedJ += energyJ;
    this.capGpuSeconds += gpuSeconds;
    this.capWeighted += gpuSeconds * a.cap;
  }

  private addTo(map: Map<string, UsageTotals>, key: string, gpuSeconds: number, energyJ: number, heldJ: number, energyYuan: number, gpuYuan: number, co2Grams: number, work: number): void {
    let u = map.get(key);
    if (!u) map.set(key, (u = newTotals()));
    u.attempts++;
    u.gpuSeconds += gpuSeconds;
    u.energyJ += energyJ;
    u.heldIdleJ += heldJ;
    u.energyYuan += energyYuan;
    u.gpuYuan += gpuYuan;
    u.co2Grams += co2Grams;
    u.work += work;
  }

  /** Reference GPU-hours per step of the job. */
  private perStepOf(spec: JobSpec): number {
    const ref = this.opts.workModel;
    let tp = ref !== undefined ? (spec.throughput[ref] ?? 0) : 0;
    if (!(tp > 0)) for (const m in spec.throughput) tp = Math.max(tp, spec.throughput[m] ?? 0);
    return tp > 0 ? Math.max(1, jobGpus(spec)) / tp / 3600 : 0;
  }

  private pushPhase(a: Attempt): void {
    const h = this.phaseHeap;
    h.push(a);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if ((h[p] as Attempt).workStart <= (h[i] as Attempt).workStart) break;
      [h[p], h[i]] = [h[i] as Attempt, h[p] as Attempt];
      i = p;
    }
  }

  private popPhase(): Attempt {
    const h = this.phaseHeap;
    const top = h[0] as Attempt;
    const last = h.pop() as Attempt;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && (h[l] as Attempt).workStart < (h[m] as Attempt).workStart) m = l;
        if (r < h.length && (h[r] as Attempt).workStart < (h[m] as Attempt).workStart) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i] as Attempt, h[m] as Attempt];
        i = m;
      }
    }
    return top;
  }

  /**
   * The totals up to `now` (the end of the run): running attempts are closed there (their work
   * so far counts). Call once, at the end. Throws an AccountingError when accounting does not
   * close within 0.1 %.
   */
  report(now: number): EnergyReport {
    this.advance(now);
    for (const id of [...this.jobs.keys()].sort()) this.close(id, now, 'running', 0);
    this.integrate(now);
    let nodeJ = 0;
    for (let i = 0; i < this.nodeJ.length; i++) {
      this.settleNode(i, now);
      nodeJ += this.nodeJ[i] as number;
    }
    let overheadYuan = 0;
    let overheadCo2 = 0;
    for (let h = 0; h < this.overheadByHour.length; h++) {
      const j = this.overheadByHour[h] ?? 0;
      if (j === 0) continue;
      const c = energyCharge(this.prices, j, h * 3600, (h + 1) * 3600);
      overheadYuan += c.energyYuan;
      overheadCo2 += c.co2Grams;
    }
    const parts = this.attemptsJ + this.idleJ + this.baseJ;
    const closureError = nodeJ > 0 ? Math.abs(parts - nodeJ) / nodeJ : Math.abs(parts);
    // The aggregate of the jobs' power must also agree with the attempts' own sums.
    const jobsError = this.attemptsJ > 0 ? Math.abs(this.jobsAggJ - this.attemptsJ) / this.attemptsJ : 0;
    if (closureError > 1e-3 || jobsError > 1e-3) throw new AccountingError(`energy accounting does not close: jobs ${this.attemptsJ.toExponential(6)} J (integrated ${this.jobsAggJ.toExponential(6)}) + idle ${this.idleJ.toExponential(6)} + base ${this.baseJ.toExponential(6)} vs nodes ${nodeJ.toExponential(6)} J`);
    const pue = this.prices.pue;
    const kwh = (j: number): number => (j * pue) / 3.6e6;
    const samples: PowerSample[] = [];
    for (let b = 0; b < this.buckets.length; b++) {
      const row = this.buckets[b] ?? [0, 0, 0];
      const w = Math.min(this.bucket, now - b * this.bucket);
      if (!(w > 0)) continue;
      samples.push({ hour: (b * this.bucket) / 3600, jobsW: (row[0] as number) / w, idleW: (row[1] as number) / w, baseW: (row[2] as number) / w });
    }
    const toRecord = <T>(m: Map<string, T>): Record<string, T> => Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return {
      seconds: now,
      nodeEnergyJ: nodeJ,
      jobsEnergyJ: this.attemptsJ,
      heldIdleEnergyJ: this.attemptsHeldJ,
      idleEnergyJ: this.idleJ,
      baseEnergyJ: this.baseJ,
      closureError,
      energyKwh: kwh(nodeJ),
      idleEnergyKwh: kwh(this.idleJ),
      baseEnergyKwh: kwh(this.baseJ),
      costYuan: this.attemptsYuan + overheadYuan,
      co2Kg: (this.attemptsCo2 + overheadCo2) / 1000,
      work: this.work,
      byTenant: toRecord(this.byTenant),
      byQueue: toRecord(this.byQueue),
      byModel: toRecord(this.byModel),
      cappedShare: this.attemptsJ > 0 ? this.cappedJ / this.attemptsJ : 0,
      meanCap: this.capGpuSeconds > 0 ? this.capWeighted / this.capGpuSeconds : 1,
      ...(this.opts.keepAttempts ? { attempts: this.attempts, byJob: toRecord(this.byJob) } : {}),
      power: { bucketSeconds: this.bucket, samples },
    };
  }
}
