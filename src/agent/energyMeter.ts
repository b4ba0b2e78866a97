/**
 * Measured GPU energy on a node, attributed to the runs that held each GPU (docs/energy.md).
 *
 * Each call of `observe` closes one interval [previous sample, this sample] per GPU:
 *
 * - **Energy of the interval**: the difference of the driver's total-energy counter (mJ since the
 *   driver loaded) when both samples carry it and it did not go back (a driver reload resets it);
 *   else the trapezoid of the two power readings × the interval.
 * - **Who used it**: the interval's energy is spread evenly over its time. A run holds its GPUs
 *   from its start (or the interval's start, if it started before) to the interval's end; a run
 *   the sample finds ended still counts to the interval's end (ends are known to the sample).
 *   Within each stretch of time the energy goes to the runs present in proportion to the milli-GPU
 *   each holds on that GPU (a fractional GPU's energy is split by gpu milli); a stretch with no
 *   run present is the node's unallocated idle energy.
 * - **Idle apart**: energy a run gets over an interval in which its GPU's utilisation read 0 at
 *   both ends counts also as that run's `idleJ` (allocated but unused).
 *
 * So node energy = Σ runs' energy + unallocated, exactly (up to float rounding). Counters are
 * cumulative and carry an epoch (made once, kept in the agent's data directory with the rest of
 * the state) and a sequence number, so the server applies them idempotently: a repeated
 * heartbeat adds nothing, a lost one loses nothing, and after an agent restart the counters go
 * on where they were (the restart's gap is integrated as one interval, from the last sample
 * before to the first after). Pure: no clock, no files; the agent persists `state()`.
 */

import type { EnergyReport } from '../api/types.ts';

/** One GPU's reading at a sample. */
export interface MeterSample {
  readonly index: number;
  readonly powerWatts: number;
  readonly utilization: number;
  /** The driver's total-energy counter (mJ since it loaded), where the GPU has one. */
  readonly energyMj?: number;
}

/** A run as the agent sees it at a sample. */
export interface MeterRun {
  readonly runId: string;
  readonly gpus: readonly number[];
  /** Milli-GPU it holds on each of its GPUs (1000: whole GPUs). */
  readonly gpuMilli: number;
  /** When its process started (ms); null: it never started (it holds nothing). */
  readonly startedAt: number | null;
  /** False once the run has ended. */
  readonly alive: boolean;
}

/** What a heartbeat carries: cumulative joules since the epoch began (api/types.ts). */
export type EnergyCounters = EnergyReport;

interface GpuReading {
  index: number;
  powerWatts: number;
  utilization: number;
  energyMj: number | null;
}

interface RunCounter {
  runId: string;
  gpus: number[];
  gpuMilli: number;
  startedAt: number | null;
  energyJ: number;
  idleJ: number;
  /** The seq of the observation that counted its last energy; set once it has ended. */
  endedSeq: number | null;
}

/** What the agent keeps on disk between restarts (JSON). */
export interface MeterState {
  readonly epoch: string;
  readonly seq: number;
  readonly at: number | null;
  readonly readings: readonly GpuReading[];
  readonly nodeJ: number;
  readonly unallocatedJ: number;
  readonly runs: readonly RunCounter[];
  /** Runs dropped after their end was acknowledged (the newest RETIRED_KEPT): never counted again. */
  readonly retired: readonly string[];
}

/** How many retired run ids the meter remembers (the runner forgets a run soon after its end). */
const RETIRED_KEPT = 4096;

export class EnergyMeter {
  private epoch: string;
  private seq: number;
  private at: number | null;
  private readings = new Map<number, GpuReading>();
  private nodeJ: number;
  private unallocatedJ: number;
  private readonly runs = new Map<string, RunCounter>();
  private readonly retired = new Set<string>();

  /** `epoch`: a new id for fresh counters (used when `saved` is absent or unreadable). */
  constructor(epoch: string, saved?: unknown) {
    const s = validState(saved);
    this.epoch = s?.epoch ?? epoch;
    this.seq = s?.seq ?? 0;
    this.at = s?.at ?? null;
    this.nodeJ = s?.nodeJ ?? 0;
    this.unallocatedJ = s?.unallocatedJ ?? 0;
    for (const r of s?.readings ?? []) this.readings.set(r.index, { ...r });
    for (const r of s?.runs ?? []) this.runs.set(r.runId, { ...r, gpus: [...r.gpus] });
    for (const id of s?.retired ?? []) this.retired.add(id);
  }

  /**
   * Closes the interval since the last sample at time `at` (ms) with one reading per GPU and the
   * runs the agent holds now. An empty sample (nvidia-smi failed) changes nothing: the next one
   * covers the gap. Returns the joules measured over the interval.
   */
  observe(at: number, samples: readonly MeterSample[], runs: readonly MeterRun[]): number {
    if (samples.length === 0) return 0;
    const t0 = this.at;
    // Runs it sees for the first time (started since, or adopted after a restart that lost the state).
    for (const r of runs) {
      if (!this.runs.has(r.runId) && !this.retired.has(r.runId) && r.startedAt !== null) {
        this.runs.set(r.runId, { runId: r.runId, gpus: [...r.gpus], gpuMilli: r.gpuMilli > 0 ? r.gpuMilli : 1000, startedAt: r.startedAt, energyJ: 0, idleJ: 0, endedSeq: null });
      }
    }
    let measured = 0;
    if (t0 !== null && at > t0) {
      this.seq++;
      const open = [...this.runs.values()].filter((r) => r.endedSeq === null && r.startedAt !== null && r.startedAt < at);
      for (const s of samples) {
        const before = this.readings.get(s.index);
        if (!before) continue;
        const joules = intervalJoules(before, s, at - t0);
        measured += joules;
        this.nodeJ += joules;
        const idle = before.utilization === 0 && s.utilization === 0;
        const holders = open.filter((r) => r.gpus.includes(s.index)).map((r) => ({ r, from: Math.max(t0, r.startedAt as number) }));
        for (const [run, part] of split(joules, t0, at, holders)) {
          if (run === null) this.unallocatedJ += part;
          else {
            run.energyJ += part;
            if (idle) run.idleJ += part;
          }
        }
      }
    }
    // A run the agent no longer holds, or holds as ended, has had its last energy now.
    const alive = new Map(runs.map((r) => [r.runId, r.alive]));
    for (const r of this.runs.values()) if (r.endedSeq === null && alive.get(r.runId) !== true) r.endedSeq = this.seq;
    this.at = at;
    this.readings = new Map(samples.map((s) => [s.index, { index: s.index, powerWatts: s.powerWatts, utilization: s.utilization, energyMj: typeof s.energyMj === 'number' ? s.energyMj : null }]));
    return measured;
  }

  /** The cumulative counters to send now. */
  counters(): EnergyCounters {
    return {
      epoch: this.epoch,
      seq: this.seq,
      nodeJ: this.nodeJ,
      unallocatedJ: this.unallocatedJ,
      runs: [...this.runs.values()].map((r) => ({ runId: r.runId, energyJ: r.energyJ, idleJ: r.idleJ })),
    };
  }

  /** A server took the counters of observation `seq`: ended runs counted by then are no longer sent. */
  acknowledged(seq: number): void {
    for (const [id, r] of this.runs) {
      if (r.endedSeq === null || r.endedSeq > seq) continue;
      this.runs.delete(id);
      this.retired.add(id);
    }
    for (const id of this.retired) {
      if (this.retired.size <= RETIRED_KEPT) break;
      this.retired.delete(id);
    }
  }

  state(): MeterState {
    return { epoch: this.epoch, seq: this.seq, at: this.at, readings: [...this.readings.values()], nodeJ: this.nodeJ, unallocatedJ: this.unallocatedJ, runs: [...this.runs.values()], retired: [...this.retired] };
  }
}

/** Joules of one GPU over an interval of `ms`: counter difference, else the power trapezoid. */
export function intervalJoules(before: { powerWatts: number; energyMj: number | null }, after: { powerWatts: number; energyMj?: number | null }, ms: number): number {
  const a = before.energyMj;
  const b = after.energyMj;
  if (typeof a === 'number' && typeof b === 'number' && b >= a) return (b - a) / 1000;
  return ((before.powerWatts + after.powerWatts) / 2) * (ms / 1000);
}

/**
 * Splits `joules`, spent evenly over [t0, t1], among holders present from their `from` to t1,
 * in proportion to their milli-GPU; stretches with no holder go to null (unallocated).
 */
export function split<R extends { gpuMilli: number }>(joules: number, t0: number, t1: number, holders: readonly { r: R; from: number }[]): Map<R | null, number> {
  const out = new Map<R | null, number>();
  const add = (k: R | null, j: number): void => {
    if (j > 0) out.set(k, (out.get(k) ?? 0) + j);
  };
  const span = t1 - t0;
  if (!(span > 0) || joules === 0) return out;
  const cuts = [...new Set([t0, ...holders.map((h) => h.from).filter((f) => f > t0 && f < t1), t1])].sort((a, b) => a - b);
  for (let i = 0; i + 1 < cuts.length; i++) {
    const a = cuts[i] as number;
    const b = cuts[i + 1] as number;
    const part = (joules * (b - a)) / span;
    const present = holders.filter((h) => h.from <= a);
    const milli = present.reduce((n, h) => n + h.r.gpuMilli, 0);
    if (milli <= 0) add(null, part);
    else for (const h of present) add(h.r, (part * h.r.gpuMilli) / milli);
  }
  return out;
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** A saved state read back, or null when it is not one (a fresh epoch is then started). */
function validState(v: unknown): MeterState | null {
  if (typeof v !== 'object' || v === null) return null;
  const s = v as Record<string, unknown>;
  if (typeof s['epoch'] !== 'string' || !Number.isSafeInteger(s['seq']) || !finite(s['nodeJ']) || !finite(s['unallocatedJ'])) return null;
  if (s['at'] !== null && !finite(s['at'])) return null;
  if (!Array.isArray(s['readings']) || !Array.isArray(s['runs'])) return null;
  const readings = (s['readings'] as Record<string, unknown>[]).filter((r) => Number.isInteger(r?.['index']) && finite(r['powerWatts']) && finite(r['utilization']));
  const runs = (s['runs'] as Record<string, unknown>[]).filter(
    (r) => typeof r?.['runId'] === 'string' && Array.isArray(r['gpus']) && finite(r['gpuMilli']) && finite(r['energyJ']) && finite(r['idleJ']) && (r['startedAt'] === null || finite(r['startedAt'])) && (r['endedSeq'] === null || Number.isSafeInteger(r['endedSeq'])),
  );
  const retired = Array.isArray(s['retired']) ? (s['retired'] as unknown[]).filter((x): x is string => typeof x === 'string') : [];
  return {
    epoch: s['epoch'],
    retired,
    seq: s['seq'] as number,
    at: s['at'] as number | null,
    nodeJ: s['nodeJ'],
    unallocatedJ: s['unallocatedJ'],
    readings: readings.map((r) => ({ index: r['index'] as number, powerWatts: r['powerWatts'] as number, utilization: r['utilization'] as number, energyMj: finite(r['energyMj']) ? r['energyMj'] : null })),
    runs: runs.map((r) => ({ runId: r['runId'] as string, gpus: (r['gpus'] as unknown[]).filter((g): g is number => Number.isInteger(g)), gpuMilli: r['gpuMilli'] as number, startedAt: r['startedAt'] as number | null, energyJ: r['energyJ'] as number, idleJ: r['idleJ'] as number, endedSeq: r['endedSeq'] as number | null })),
  };
}
