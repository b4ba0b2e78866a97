/**
 * The tidal simulator: one inference service on a pool of GPUs, an autoscaler deciding every
 * `decisionSeconds` through the `Autoscaler` contract, and borrowers on the GPUs it lends
 * (`borrowers.ts`). Built for millions of requests per run:
 *
 * - **Requests**: Poisson arrivals at λ_peak × curve(bucket) (exponential gaps drawn per
 *   decision step; the step divides the bucket), exponential service times drawn in arrival
 *   order (so every policy sees the same requests), one FCFS queue in front of the replicas.
 *   A request starts at max(its arrival, the earliest time a replica is free), found with a
 *   min-heap of replica free times. A start is committed only if it falls before the next
 *   decision: the set of replicas changes only at decisions, so the one FCFS queue is exact;
 *   the rest wait in the queue (its length is what the autoscaler sees).
 * - **Replicas** (one GPU each): a new one holds its GPU from its start and serves after a
 *   log-normal load time (median and p90 from the shape). A replica on a GPU taken back from a
 *   borrower starts when the GPU is free (at once for an immediate reclaim; after the eviction
 *   checkpoint for a planned one). A stopped replica finishes the request it holds (nothing is
 *   dropped back to the queue) and frees its GPU then; stopping picks pending starts first,
 *   then loading replicas (latest first), then the busy replica that frees last, idle ones last
 *   (the replicas that stay are those free soonest).
 *   A scale-up first keeps replicas that are still finishing their last request, then uses free
 *   GPUs, then GPUs whose borrowers are already checkpointing, then evicts borrowers.
 * - **Lending**: GPUs beyond `keepGpus` go to borrowers (at decisions). When the replicas need
 *   more GPUs than are free, or keepGpus falls below what is lent, borrowers are evicted, by a
 *   planned eviction unless the decision is `urgent` (immediate reclaim), victims chosen
 *   checkpoint-aware: the least work since the last checkpoint first.
 * - **Accounting**: each GPU's time by state (free, loading, ready, stopping, lent, evicting)
 *   over the scored period; busy time per request; borrowers' time by what it bought.
 */
import type { Autoscaler, OracleView, ReplicaDecision, ServiceObservation, ServiceShape } from '../../core/tidal/autoscaler.ts';
import { loadSigma } from '../../core/tidal/sizing.ts';
import { Borrowers, newBatch, type BatchSpec, type BorrowerLedger, type BorrowerModel } from './borrowers.ts';
import type { RateCurve } from './curves.ts';
import { STREAM, StreamRng } from './streamRng.ts';

const DAY = 86_400;

export const FREE = 0;
export const LOADING = 1;
export const READY = 2;
export const STOPPING = 3;
export const LENT = 4;
export const EVICTING = 5;
export const GPU_STATES = ['free', 'loading', 'ready', 'stopping', 'lent', 'evicting'] as const;

export interface TidalSimInput {
  readonly shape: ServiceShape;
  /** Requests/s at curve value 1. */
  readonly lambdaPeak: number;
  readonly curve: RateCurve;
  readonly days: number;
  /** Days not scored (forecasters learn). */
  readonly warmupDays: number;
  readonly decisionSeconds: number;
  readonly borrowers: BorrowerModel;
  readonly batch?: BatchSpec;
  readonly seed: number;
  readonly autoscaler: Autoscaler;
  /** Hand the autoscaler the future rate (the oracle only). */
  readonly oracle?: boolean;
  /** Spacing of the time series (s; a multiple of decisionSeconds). */
  readonly seriesSeconds?: number;
}

/** A decision that had to reclaim at once because demand outran the plan. */
export interface ShortfallRecord {
  readonly atHours: number;
  /** Arrivals per second over the last interval. */
  readonly observedRate: number;
  /** What the previous decision provisioned for (requests/s), when the policy said. */
  readonly plannedRate: number | null;
  /** Replicas running or loading before, and wanted now. */
  readonly hadReplicas: number;
  readonly wantedReplicas: number;
}

export interface BatchOutcome {
  readonly tasks: number;
  readonly taskSeconds: number;
  readonly releaseHours: number;
  readonly deadlineHours: number;
  readonly done: number;
  readonly finishedAtHours: number | null;
  readonly metDeadline: boolean;
  readonly lostGpuHours: number;
}

export interface TidalRunResult {
  readonly policy: string;
  readonly seed: number;
  readonly curve: string;
  readonly gpus: number;
  /** The scored period: from this second of the run, for this many seconds. */
  readonly scoredStartSeconds: number;
  readonly scoredSeconds: number;
  /** Requests that arrived in the scored period, and in the whole run. */
  readonly requests: number;
  readonly requestsSimulated: number;
  readonly windows: number;
  readonly windowsMet: number;
  /** GPU-seconds of the scored period by GPU state (sums to gpus × scoredSeconds). */
  readonly stateSeconds: Readonly<Record<(typeof GPU_STATES)[number], number>>;
  /** GPU-seconds serving requests (within ready and stopping time). */
  readonly busySeconds: number;
  readonly ledger: BorrowerLedger;
  /** Seconds from a decision to take a lent GPU back to the replica on it serving. */
  readonly reclaimLatencies: readonly number[];
  readonly shortfalls: number;
  readonly shortfallRecords: readonly ShortfallRecord[];
  /** Every `seriesSeconds` of the scored period: the rate (requests/s), replicas (running or starting) and GPUs lent. */
  readonly seriesSeconds: number;
  readonly rateSeries: readonly number[];
  readonly replicaSeries: readonly number[];
  readonly lentSeries: readonly number[];
  /** Scored windows that missed the SLO, as hours from the run's start. */
  readonly missedWindowHours: readonly number[];
  readonly batch: BatchOutcome | null;
  readonly decisions: number;
  readonly wallSeconds: number;
}

const MAX_SHORTFALL_RECORDS = 100;

/** Runs one (curve, policy, seed). */
export function simulateTidal(input: TidalSimInput): TidalRunResult {
  const wallStart = performance.now();
  const { shape, curve, autoscaler } = input;
  if (shape.gpusPerReplica !== 1 || shape.concurrency !== 1) throw new Error('the tidal simulator models one request at a time on one GPU per replica (gpusPerReplica 1, concurrency 1)');
  const I = input.decisionSeconds;
  const B = curve.bucketSeconds;
  if (!(I > 0) || B % I !== 0) throw new Error(`decisionSeconds (${I}) must divide the curve's bucket (${B} s)`);
  if (B !== shape.sloWindowSeconds) throw new Error(`the curve's bucket (${B} s) must be the SLO window (${shape.sloWindowSeconds} s)`);
  const seriesEvery = input.seriesSeconds ?? B;
  const G = shape.maxReplicas;
  const end = input.days * DAY;
  const scoreFrom = input.warmupDays * DAY;
  const buckets = Math.ceil(end / B);
  if (curve.values.length < buckets) throw new Error(`the curve has ${curve.values.length} buckets, the run needs ${buckets}`);
  const scored = (from: number, to: number): number => Math.max(0, Math.min(to, end) - Math.max(from, scoreFrom));

  const arrivalsRng = new StreamRng(input.seed, STREAM.arrivals);
  const serviceRng = new StreamRng(input.seed, STREAM.service);
  const loadRng = new StreamRng(input.seed, STREAM.load);
  const loadMu = Math.log(shape.loadSeconds.median);
  const loadS = loadSigma(shape);
  const drawLoad = (): number => (loadS > 0 ? loadRng.logNormal(loadMu, loadS) : shape.loadSeconds.median);

  // --- GPUs -------------------------------------------------------------------------------
  const state = new Uint8Array(G).fill(READY);
  const since = new Float64Array(G);
  const next = new Float64Array(G).fill(Infinity);
  const freeAt = new Float64Array(G);
  const readyAt = new Float64Array(G);
  const pending = new Uint8Array(G);
  const reclaimedAt = new Float64Array(G).fill(NaN);
  const stateSeconds = new Float64Array(GPU_STATES.length);
  const account = (g: number, t: number): void => {
    stateSeconds[state[g] as number] = (stateSeconds[state[g] as number] as number) + scored(since[g] as number, t);
    since[g] = t;
  };
  const setState = (g: number, s: number, t: number): void => {
    account(g, t);
    state[g] = s;
  };
  const borrowers = new Borrowers(G, input.borrowers, scoreFrom, end, input.batch ? newBatch(input.batch) : null);
  const reclaimLatencies: number[] = [];

  // --- The replicas' free times: a binary min-heap of GPU indices ---------------------------
  const heap = new Int32Array(G);
  let heapSize = 0;
  const siftDown = (start: number): void => {
    let i = start;
    const g = heap[i] as number;
    const key = freeAt[g] as number;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= heapSize) break;
      const r = l + 1;
      let c = l;
      if (r < heapSize && (freeAt[heap[r] as number] as number) < (freeAt[heap[l] as number] as number)) c = r;
      if ((freeAt[heap[c] as number] as number) >= key) break;
      heap[i] = heap[c] as number;
      i = c;
    }
    heap[i] = g;
  };
  const isServer = (g: number): boolean => state[g] === LOADING || state[g] === READY || (state[g] === EVICTING && pending[g] === 1);
  const rebuildHeap = (): void => {
    heapSize = 0;
    for (let g = 0; g < G; g++) if (isServer(g)) heap[heapSize++] = g;
    for (let i = (heapSize >> 1) - 1; i >= 0; i--) siftDown(i);
  };
  rebuildHeap();

  // --- The FCFS queue: arrival and service times in a growable ring ------------------------
  let cap = 1 << 14;
  let qArr = new Float64Array(cap);
  let qSvc = new Float64Array(cap);
  let qHead = 0;
  let qLen = 0;
  const grow = (): void => {
    const arr = new Float64Array(cap * 2);
    const svc = new Float64Array(cap * 2);
    for (let i = 0; i < qLen; i++) {
      arr[i] = qArr[(qHead + i) & (cap - 1)] as number;
      svc[i] = qSvc[(qHead + i) & (cap - 1)] as number;
    }
    qArr = arr;
    qSvc = svc;
    qHead = 0;
    cap *= 2;
  };

  // --- SLO windows ----------------------------------------------------------------------------
  const windowN = new Int32Array(buckets);
  const windowOver = new Int32Array(buckets);
  const q = shape.sloQuantile;
  const allowedOver = (n: number): number => n - Math.ceil(q * n - 1e-9);
  const sloWait = shape.sloWaitSeconds;
  const invB = 1 / B;

  const oracleView: OracleView = {
    maxRate(from: number, to: number): number {
      const first = Math.max(0, Math.floor(from * invB));
      const last = Math.min(buckets - 1, Math.ceil(to * invB) - 1);
      let peak = 0;
      for (let b = first; b <= last; b++) peak = Math.max(peak, curve.values[b] as number);
      return peak * input.lambdaPeak;
    },
  };

  /** Applies every scheduled transition up to t and brings borrowers to t. */
  const advanceTo = (t: number): void => {
    for (let g = 0; g < G; g++) {
      while ((next[g] as number) <= t) {
        const at = next[g] as number;
        const s = state[g];
        if (s === LOADING) {
          setState(g, READY, at);
          next[g] = Infinity;
          const decided = reclaimedAt[g] as number;
          if (!Number.isNaN(decided)) {
            if (decided >= scoreFrom && decided < end) reclaimLatencies.push(at - decided);
            reclaimedAt[g] = NaN;
          }
        } else if (s === STOPPING) {
          setState(g, FREE, at);
          next[g] = Infinity;
        } else if (s === EVICTING) {
          if (pending[g] === 1) {
            pending[g] = 0;
            setState(g, LOADING, at);
            next[g] = readyAt[g] as number;
          } else {
            setState(g, FREE, at);
            next[g] = Infinity;
          }
        } else next[g] = Infinity;
      }
      if (state[g] === LENT) borrowers.advance(g, t, t - I);
    }
  };

  /** Lent GPUs ordered for eviction: least work at risk first (ties: lower index). */
  const victims = (t: number): number[] => {
    const out: number[] = [];
    for (let g = 0; g < G; g++) if (state[g] === LENT) out.push(g);
    const risk = new Float64Array(G);
    for (const g of out) risk[g] = borrowers.workAtRisk(g, t);
    return out.sort((a, b) => (risk[a] as number) - (risk[b] as number) || a - b);
  };

  const checkDecision = (d: ReplicaDecision, t: number): void => {
    const bad = (why: string): never => {
      throw new Error(`autoscaler '${autoscaler.name}' at t=${t}: ${why} (decision ${JSON.stringify(d)})`);
    };
    if (!Number.isInteger(d.replicas) || d.replicas < shape.minReplicas || d.replicas > shape.maxReplicas) bad(`replicas must be an integer in [${shape.minReplicas}, ${shape.maxReplicas}]`);
    if (!(d.keepGpus >= d.replicas * shape.gpusPerReplica) || d.keepGpus > G) bad(`keepGpus must be in [replicas × gpusPerReplica, ${G}]`);
  };

  /** Applies a decision at T: replicas first, then lending. */
  const apply = (d: ReplicaDecision, T: number): void => {
    let active = 0;
    for (let g = 0; g < G; g++) if (isServer(g)) active++;
    let changed = false;
    if (d.replicas < active) {
      let stop = active - d.replicas;
      changed = true;
      // Pending starts on GPUs still being evicted: the GPU is freed when the checkpoint ends.
      for (let g = 0; g < G && stop > 0; g++) {
        if (state[g] === EVICTING && pending[g] === 1) {
          pending[g] = 0;
          reclaimedAt[g] = NaN;
          stop--;
        }
      }
      // Loading replicas, the latest to be ready first.
      while (stop > 0) {
        let pick = -1;
        for (let g = 0; g < G; g++) if (state[g] === LOADING && (pick < 0 || (readyAt[g] as number) > (readyAt[pick] as number))) pick = g;
        if (pick < 0) break;
        setState(pick, FREE, T);
        next[pick] = Infinity;
        reclaimedAt[pick] = NaN;
        stop--;
      }
      // Ready replicas: the busy one that frees last first (it drains: finishes its request, takes
      // no other), idle ones last, so the replicas that stay are the ones free soonest.
      while (stop > 0) {
        let pick = -1;
        for (let g = 0; g < G; g++) if (state[g] === READY && (pick < 0 || (freeAt[g] as number) > (freeAt[pick] as number))) pick = g;
        if (pick < 0) break;
        if ((freeAt[pick] as number) <= T) setState(pick, FREE, T);
        else {
          setState(pick, STOPPING, T);
          next[pick] = freeAt[pick] as number;
        }
        stop--;
      }
    } else if (d.replicas > active) {
      let start = d.replicas - active;
      changed = true;
      // Replicas still finishing their last request stay.
      while (start > 0) {
        let pick = -1;
        for (let g = 0; g < G; g++) if (state[g] === STOPPING && (pick < 0 || (freeAt[g] as number) < (freeAt[pick] as number))) pick = g;
        if (pick < 0) break;
        setState(pick, READY, T);
        next[pick] = Infinity;
        start--;
      }
      for (let g = 0; g < G && start > 0; g++) {
        if (state[g] === FREE) {
          setState(g, LOADING, T);
          readyAt[g] = T + drawLoad();
          freeAt[g] = readyAt[g] as number;
          next[g] = readyAt[g] as number;
          start--;
        }
      }
      for (let g = 0; g < G && start > 0; g++) {
        if (state[g] === EVICTING && pending[g] === 0) {
          pending[g] = 1;
          readyAt[g] = (next[g] as number) + drawLoad();
          freeAt[g] = readyAt[g] as number;
          start--;
        }
      }
      if (start > 0) {
        for (const g of victims(T)) {
          if (start === 0) break;
          reclaimedAt[g] = T;
          if (d.urgent) {
            borrowers.reclaim(g, T);
            setState(g, LOADING, T);
            readyAt[g] = T + drawLoad();
            next[g] = readyAt[g] as number;
          } else {
            borrowers.evict(g, T);
            setState(g, EVICTING, T);
            pending[g] = 1;
            next[g] = T + input.borrowers.evictSeconds;
            readyAt[g] = (next[g] as number) + drawLoad();
          }
          freeAt[g] = readyAt[g] as number;
          start--;
        }
      }
    }
    // Lending: GPUs beyond keepGpus go to borrowers; below it, borrowers leave.
    const lendable = G - d.keepGpus;
    let lent = 0;
    for (let g = 0; g < G; g++) if (state[g] === LENT) lent++;
    if (lent > lendable) {
      for (const g of victims(T)) {
        if (lent <= lendable) break;
        if (d.urgent) {
          borrowers.reclaim(g, T);
          setState(g, FREE, T);
        } else {
          borrowers.evict(g, T);
          setState(g, EVICTING, T);
          pending[g] = 0;
          next[g] = T + input.borrowers.evictSeconds;
        }
        lent--;
      }
    } else {
      for (let g = 0; g < G && lent < lendable; g++) {
        if (state[g] === FREE) {
          setState(g, LENT, T);
          borrowers.start(g, T);
          lent++;
        }
      }
    }
    if (changed) rebuildHeap();
  };

  // --- The run -------------------------------------------------------------------------------
  const steps = Math.round(end / I);
  const seriesRate: number[] = [];
  const seriesReplicas: number[] = [];
  const seriesLent: number[] = [];
  const shortfallRecords: ShortfallRecord[] = [];
  let shortfalls = 0;
  let stepArrivals = 0;
  let requestsSimulated = 0;
  let busy = 0;
  let lastMissedWindow = -1;
  let lastMissed = false;
  let lastPlanned: number | null = null;
  let decisions = 0;
  const meanService = shape.serviceSeconds;

  for (let k = 0; k < steps; k++) {
    const T = k * I;
    const Tend = T + I;
    if (k > 0) {
      advanceTo(T);
      let ready = 0;
      let loading = 0;
      let stopping = 0;
      let lentNow = 0;
      for (let g = 0; g < G; g++) {
        const s = state[g];
        if (s === READY) ready++;
        else if (s === LOADING || (s === EVICTING && pending[g] === 1)) loading++;
        else if (s === STOPPING) stopping++;
        else if (s === LENT || (s === EVICTING && pending[g] === 0)) lentNow++;
      }
      const closed = Math.floor(T * invB) - 1;
      if (closed >= 0 && closed !== lastMissedWindow) {
        lastMissedWindow = closed;
        let over = windowOver[closed] as number;
        const from = closed * B;
        const to = from + B;
        for (let i = 0; i < qLen; i++) {
          const a = qArr[(qHead + i) & (cap - 1)] as number;
          if (a >= to) break;
          if (a >= from && T - a > sloWait) over++;
        }
        lastMissed = over > allowedOver(windowN[closed] as number);
      }
      const observation: ServiceObservation = {
        now: T,
        arrivals: stepArrivals,
        intervalSeconds: I,
        queueLength: qLen,
        ready,
        loading,
        stopping,
        lentGpus: lentNow,
        sloMissed: lastMissed,
        ...(input.oracle ? { oracle: oracleView } : {}),
      };
      const d = autoscaler.decide(observation);
      decisions++;
      checkDecision(d, T);
      if (d.urgent && d.replicas > ready + loading && T >= scoreFrom) {
        shortfalls++;
        if (shortfallRecords.length < MAX_SHORTFALL_RECORDS) shortfallRecords.push({ atHours: T / 3600, observedRate: stepArrivals / I, plannedRate: lastPlanned, hadReplicas: ready + loading, wantedReplicas: d.replicas });
      }
      lastPlanned = d.plannedRate ?? null;
      apply(d, T);
    }
    if (T >= scoreFrom && T % seriesEvery === 0) {
      let replicas = 0;
      let lentNow = 0;
      for (let g = 0; g < G; g++) {
        if (isServer(g)) replicas++;
        else if (state[g] === LENT) lentNow++;
      }
      seriesRate.push(input.lambdaPeak * (curve.values[Math.floor(T * invB)] as number));
      seriesReplicas.push(replicas);
      seriesLent.push(lentNow);
    }

    // Arrivals in [T, Tend): one bucket, one rate.
    const bucket = Math.floor(T * invB);
    const lambda = input.lambdaPeak * (curve.values[bucket] as number);
    stepArrivals = 0;
    if (lambda > 0) {
      const gap = 1 / lambda;
      for (let t = T + arrivalsRng.exponential(gap); t < Tend; t += arrivalsRng.exponential(gap)) {
        if (qLen === cap) grow();
        const slot = (qHead + qLen) & (cap - 1);
        qArr[slot] = t;
        qSvc[slot] = serviceRng.exponential(meanService);
        qLen++;
        stepArrivals++;
      }
      windowN[bucket] = (windowN[bucket] as number) + stepArrivals;
      requestsSimulated += stepArrivals;
    }

    // Start what can start before the next decision.
    while (qLen > 0 && heapSize > 0) {
      const a = qArr[qHead] as number;
      const top = heap[0] as number;
      const f = freeAt[top] as number;
      const s = a > f ? a : f;
      if (s >= Tend) break;
      const svc = qSvc[qHead] as number;
      if (s - a > sloWait) {
        const w = Math.floor(a * invB);
        windowOver[w] = (windowOver[w] as number) + 1;
      }
      const done = s + svc;
      freeAt[top] = done;
      siftDown(0);
      busy += s >= scoreFrom && done <= end ? svc : Math.max(0, Math.min(done, end) - Math.max(s, scoreFrom));
      qHead = (qHead + 1) & (cap - 1);
      qLen--;
    }
  }

  // --- Close ---------------------------------------------------------------------------------
  advanceTo(end);
  for (let i = 0; i < qLen; i++) {
    const a = qArr[(qHead + i) & (cap - 1)] as number;
    if (end - a > sloWait) {
      const w = Math.floor(a * invB);
      windowOver[w] = (windowOver[w] as number) + 1;
    }
  }
  for (let g = 0; g < G; g++) {
    if (state[g] === LENT) borrowers.close(g, end);
    account(g, end);
  }
  let windows = 0;
  let windowsMet = 0;
  let requests = 0;
  const missedWindowHours: number[] = [];
  for (let w = Math.floor(scoreFrom * invB); w < buckets; w++) {
    windows++;
    requests += windowN[w] as number;
    if ((windowOver[w] as number) <= allowedOver(windowN[w] as number)) windowsMet++;
    else missedWindowHours.push((w * B) / 3600);
  }
  const batch = borrowers.batch;
  const hours = (s: number): number => s / 3600;
  return {
    policy: autoscaler.name,
    seed: input.seed,
    curve: curve.name,
    gpus: G,
    scoredStartSeconds: scoreFrom,
    scoredSeconds: end - scoreFrom,
    requests,
    requestsSimulated,
    windows,
    windowsMet,
    stateSeconds: Object.fromEntries(GPU_STATES.map((name, i) => [name, stateSeconds[i] as number])) as Record<(typeof GPU_STATES)[number], number>,
    busySeconds: busy,
    ledger: { ...borrowers.ledger },
    reclaimLatencies,
    shortfalls,
    shortfallRecords,
    seriesSeconds: seriesEvery,
    rateSeries: seriesRate,
    replicaSeries: seriesReplicas,
    lentSeries: seriesLent,
    missedWindowHours,
    batch: batch
      ? {
          tasks: batch.spec.tasks,
          taskSeconds: batch.spec.taskSeconds,
          releaseHours: hours(batch.spec.releaseAt),
          deadlineHours: hours(batch.spec.deadlineAt),
          done: batch.done,
          finishedAtHours: batch.finishedAt === null ? null : hours(batch.finishedAt),
          metDeadline: batch.finishedAt !== null && batch.finishedAt <= batch.spec.deadlineAt,
          lostGpuHours: hours(batch.lostSeconds),
        }
      : null,
    decisions,
    wallSeconds: (performance.now() - wallStart) / 1000,
  };
}
