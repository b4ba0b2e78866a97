/**
 * The simulated twin of a live run: the same jobs as the core's JobSpecs (throughput per model
 * from the speeds, steps, restart cost, time limits) on the same three nodes, through the
 * simulator in-process with the same scheduler, placement and options. What it returns has the
 * live run's shape (per job: submit, first start, end), so the two can be compared.
 *
 * When the live server enforces time limits (`enforceTimeLimits`), so does the simulator
 * (`timeLimits: 'enforce'`): a job whose running time over all attempts reaches its limit ends
 * timed out, as the live server's `timeout` state ends it.
 */
import { nodeId, type NodeSpec } from '../../core/model.ts';
import { Rng } from '../../core/rng.ts';
import { jobId, type JobSpec, type QueueConfig } from '../../core/scheduling/model.ts';
import { getJobScheduler } from '../../core/scheduling/policies/index.ts';
import { arraySource, simulate } from '../../sim/simulator.ts';
import { totalSteps, type Workload, type WorkloadJob } from './workload.ts';

/** The seed the live server gives its scheduler (CoreSchedulerAdapter's default). */
export const SERVER_SCHEDULER_SEED = 42;
export const COHORT = 'research';

/** One job's times in a run (seconds from the run's start), live or simulated. */
export interface JobTimes {
  readonly index: number;
  readonly name: string;
  readonly submit: number;
  /** First start (bind); null if it never started. */
  readonly start: number | null;
  /** When it ended; null if it did not. */
  readonly end: number | null;
  /** succeeded, timeout, failed, … */
  readonly state: string;
  /** Times it was requeued (preempted). */
  readonly preemptions: number;
  /** GPU model of its last run, when known. */
  readonly model: string | null;
}

export interface SchedulerChoice {
  readonly scheduler: string;
  readonly placement: string;
}

/** Scheduler options both runs get (scaled to compressed time). */
export function schedulerOptions(w: Workload): Record<string, number> {
  const p = w.params;
  return {
    quantumSeconds: p.quantumSeconds,
    estimateFloorSeconds: p.estimateFloorSeconds,
    starvationSeconds: p.starvationSeconds,
    minRunSeconds: p.minRunSeconds,
    restartSeconds: p.restartSeconds,
    maxPreemptions: p.maxPreemptions,
  };
}

export function simNodes(w: Workload): NodeSpec[] {
  return [...w.nodes]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((n) => ({ id: nodeId(n.name), cpuMilli: NODE_CPUS * 1000, memoryMib: NODE_MEMORY_GIB * 1024, gpus: Array.from({ length: n.gpus }, () => n.model) }));
}

/** What each simulated and live node offers besides GPUs (far more than the jobs ask). */
export const NODE_CPUS = 64;
export const NODE_MEMORY_GIB = 256;
/** What each task asks besides GPUs. */
export const TASK_CPUS = 1;
export const TASK_MEMORY_MIB = 1024;

export function simQueues(w: Workload): QueueConfig[] {
  return w.tenants.map((t) => ({ name: t, cohort: COHORT, nominalQuota: { '*': w.quotas[t] ?? 0 } }));
}

/**
 * How the live run differs from the workload on paper, measured before its jobs are submitted:
 * what starting a task costs, and how many jobs the server numbered first.
 */
export interface LiveCalibration {
  /**
   * Seconds a run holds its GPUs beyond its work: the agent picking the task up, starting the
   * process, and reporting its exit (the live run's probes measure it).
   */
  readonly startOverheadSeconds: number;
  /** Jobs the live server numbered before the workload's (its probes): job i is id i + 1 + this. */
  readonly idOffset: number;
}

export const NO_CALIBRATION: LiveCalibration = { startOverheadSeconds: 0, idOffset: 0 };

/**
 * Speed at which the start overhead is turned into steps: the GPU-weighted harmonic mean of the
 * cluster's speeds, so that the overhead is right on average over where jobs run (the
 * simulator charges its restart cost only to restarts, so a first start's cost is work).
 */
export function overheadSpeed(w: Workload): number {
  let gpus = 0;
  let time = 0;
  for (const n of w.nodes) {
    gpus += n.gpus;
    time += n.gpus / (w.speeds[n.model] ?? 1);
  }
  return gpus / time;
}

/** A workload job as the core sees it. Ids are the live server's: 1, 2, … in submission order (after the probes). */
export function coreJobSpec(j: WorkloadJob, w: Workload, cal: LiveCalibration = NO_CALIBRATION): JobSpec {
  const rate = w.params.stepsPerSecond;
  const throughput: Record<string, number> = {};
  for (const [model, speed] of Object.entries(w.speeds)) throughput[model] = rate * speed;
  const whole = j.gpusPerTask >= 1;
  return {
    id: jobId(String(j.index + 1 + cal.idOffset)),
    tenant: j.tenant,
    queue: j.queue,
    priorityClass: 'custom',
    priority: j.priority,
    submitTime: j.arrival,
    groups: [
      {
        name: 'worker',
        replicas: j.replicas,
        task: { cpuMilli: TASK_CPUS * 1000, memoryMib: TASK_MEMORY_MIB, gpuCount: whole ? j.gpusPerTask : 1, gpuMilli: whole ? 1000 : Math.round(j.gpusPerTask * 1000), allowedModels: [] },
      },
    ],
    totalSteps: totalSteps(j, w.params) + cal.startOverheadSeconds * rate * overheadSpeed(w),
    throughput,
    // The trainer saves a checkpoint on SIGTERM, so a preemption loses no steps: progress is
    // as good as saved continuously (no interval).
    restartCostSeconds: w.params.loadSeconds + cal.startOverheadSeconds,
    preemptible: j.preemptible,
    timeLimitSeconds: j.timeLimitSeconds,
    jobType: j.jobType,
  };
}

export interface SimTwinResult {
  readonly jobs: readonly JobTimes[];
  /** When the last job ended. */
  readonly makespan: number;
}

/** Runs the workload through the simulator with the live run's scheduler and placement. */
export function runSimTwin(w: Workload, choice: SchedulerChoice, o: { enforceTimeLimits: boolean; calibration?: LiveCalibration }): SimTwinResult {
  const factory = getJobScheduler(choice.scheduler);
  if (!factory) throw new Error(`unknown scheduler '${choice.scheduler}'`);
  const inner = factory({ rng: Rng.fromSeed(SERVER_SCHEDULER_SEED), placement: choice.placement, options: schedulerOptions(w) });
  const scheduler = inner;
  const specs = w.jobs.map((j) => coreJobSpec(j, w, o.calibration));
  const start = new Map<string, number>();
  const end = new Map<string, number>();
  const preemptions = new Map<string, number>();
  const model = new Map<string, string>();
  const endState = new Map<string, string>();
  const sim = simulate({
    nodes: simNodes(w),
    queues: simQueues(w),
    tenants: w.tenants.map((name) => ({ name })),
    scheduler,
    jobs: arraySource(specs),
    usageHalfLifeSeconds: w.params.usageHalfLifeSeconds,
    timeLimits: o.enforceTimeLimits ? 'enforce' : 'estimate',
    stop: () => end.size >= specs.length,
    onEvent: (e) => {
      if (e.type === 'job:started') {
        if (!start.has(e.job.id)) start.set(e.job.id, e.time);
        model.set(e.job.id, e.model);
      } else if (e.type === 'job:preempted') preemptions.set(e.job.id, (preemptions.get(e.job.id) ?? 0) + 1);
      else if (e.type === 'job:finished') end.set(e.job.id, e.time);
      else if (e.type === 'job:timedout') {
        end.set(e.job.id, e.time);
        endState.set(e.job.id, 'timeout');
      } else {
        // A simulator that ends jobs in other ways (e.g. at their time limit) says so with its own event type.
        const ev = e as { readonly type: string; readonly time: number; readonly job?: JobSpec };
        if (ev.job && ev.type.startsWith('job:') && ev.type !== 'job:submitted' && !end.has(ev.job.id)) {
          end.set(ev.job.id, ev.time);
          endState.set(ev.job.id, ev.type.slice(4));
        }
      }
    },
  });
  void sim;
  const jobs = w.jobs.map((j, i): JobTimes => {
    const id = (specs[i] as JobSpec).id as string;
    const doneAt = end.get(id);
    return {
      index: j.index,
      name: j.name,
      submit: j.arrival,
      start: start.get(id) ?? null,
      end: doneAt ?? null,
      state: doneAt !== undefined ? (endState.get(id) ?? 'succeeded') : 'unfinished',
      preemptions: preemptions.get(id) ?? 0,
      model: model.get(id) ?? null,
    };
  });
  return { jobs, makespan: Math.max(0, ...jobs.map((j) => j.end ?? 0)) };
}
