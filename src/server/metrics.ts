/**
 * Prometheus metrics: GPUs allocated and idle by model, queue lengths, pending reasons, job
 * states, scheduling latency, the API's request durations, and per-GPU utilisation, memory and
 * power as agents report them.
 * Gauges are filled from the store when scraped.
 */
import client from 'prom-client';
import { JOB_STATES, NODE_STATES } from '../api/types.ts';
import type { Store } from '../store/store.ts';

export interface Metrics {
  readonly registry: client.Registry;
  readonly cycleSeconds: client.Histogram;
  readonly submissions: client.Counter;
  readonly leader: client.Gauge;
  readonly backlog: client.Gauge;
  readonly admissionWait: client.Histogram;
  readonly requestSeconds: client.Histogram;
}

/**
 * Buckets of the API's request durations (seconds): fine up to the reads' 100-ms target and a
 * heartbeat's seconds, so that a p99 read from them says on which side of the target it is.
 */
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10];

export function createMetrics(store: Store): Metrics {
  const registry = new client.Registry();
  const cycleSeconds = new client.Histogram({
    name: 'tide_scheduling_cycle_seconds',
    help: 'Time of one scheduling cycle (snapshot, plan, apply)',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const submissions = new client.Counter({ name: 'tide_job_submissions_total', help: 'Jobs accepted', registers: [registry] });
  const admissionWait = new client.Histogram({
    name: 'tide_job_admission_wait_seconds',
    help: 'Time from submission of a job to its admission (placement) by the scheduler; a requeued job counts from its first submission',
    labelNames: ['queue'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [registry],
  });
  const requestSeconds = new client.Histogram({
    name: 'tide_http_request_duration_seconds',
    help: 'Time from a request\'s arrival at the router to its answer, by method, route (its pattern, e.g. /v1/jobs/:id; "unmatched" for none) and status code',
    labelNames: ['method', 'route', 'status_code'],
    buckets: REQUEST_BUCKETS,
    registers: [registry],
  });
  const leader = new client.Gauge({ name: 'tide_scheduler_leader', help: '1 when this server runs the scheduling loop', registers: [registry] });
  const backlog = new client.Gauge({ name: 'tide_scheduler_backlog_jobs', help: 'New pending jobs the scheduler has not taken in yet (more arrived than scheduling.arrivalsPerCycle)', registers: [registry] });

  new client.Gauge({
    name: 'tide_jobs',
    help: 'Jobs by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      this.reset();
      // Every state, 0 included, so a dashboard's series exist before the first job reaches one.
      const counts = await store.jobStateCounts();
      for (const state of JOB_STATES) this.set({ state }, counts[state] ?? 0);
    },
  });
  new client.Gauge({
    name: 'tide_gpus',
    help: 'GPUs on ready nodes by model and state (allocated or idle; fractions count in part)',
    labelNames: ['model', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      const totals = new Map<string, { used: number; all: number }>();
      for (const n of await store.listNodes()) {
        if (n.state !== 'ready') continue;
        n.gpus.forEach((g, i) => {
          const t = totals.get(g.model) ?? { used: 0, all: 0 };
          t.all += 1;
          t.used += (n.gpuUsedMilli[i] ?? 0) / 1000;
          totals.set(g.model, t);
        });
      }
      for (const [model, t] of totals) {
        this.set({ model, state: 'allocated' }, t.used);
        this.set({ model, state: 'idle' }, t.all - t.used);
      }
    },
  });
  new client.Gauge({
    name: 'tide_nodes',
    help: 'Nodes by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      this.reset();
      // Every state, 0 included (suspended and resuming too: power saving, docs/energy.md).
      const counts = new Map<string, number>(NODE_STATES.map((s) => [s, 0]));
      for (const n of await store.listNodes()) counts.set(n.state, (counts.get(n.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new client.Gauge({
    name: 'tide_queue_pending_jobs',
    help: 'Pending jobs by queue and reason (the word before the colon of the pending reason)',
    labelNames: ['queue', 'reason'],
    registers: [registry],
    async collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const j of await store.listJobs({ states: ['pending'], limit: 10_000 })) {
        const key = `${j.queue}\u0000${(j.reason ?? 'Unknown').split(':')[0]}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      for (const [key, n] of counts) {
        const [queue, reason] = key.split('\u0000');
        this.set({ queue: queue ?? '', reason: reason ?? '' }, n);
      }
    },
  });
  const gpuGauge = (name: string, help: string, pick: (t: { utilization: number; memoryUsedMib: number; powerWatts: number }) => number): void => {
    new client.Gauge({
      name,
      help,
      labelNames: ['node', 'gpu', 'model'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const n of await store.listNodes()) {
          if (n.state !== 'ready') continue;
          for (const t of n.telemetry) this.set({ node: n.id, gpu: String(t.index), model: n.gpus[t.index]?.model ?? '' }, pick(t));
        }
      },
    });
  };
  gpuGauge('tide_gpu_utilization_ratio', 'GPU utilisation reported by the agent (0-1)', (t) => t.utilization / 100);
  gpuGauge('tide_gpu_power_watts', 'GPU power draw reported by the agent', (t) => t.powerWatts);
  gpuGauge('tide_gpu_memory_used_bytes', 'GPU memory in use reported by the agent', (t) => t.memoryUsedMib * 2 ** 20);
  return { registry, cycleSeconds, submissions, leader, backlog, admissionWait, requestSeconds };
}
