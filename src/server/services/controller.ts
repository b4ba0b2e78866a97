/**
 * The services' controller (docs/services.md), run by the server that leads the scheduling loop.
 *
 * Every `reconcileMs` (1 s) it brings each service's replicas to its desired count: a replica
 * that exited on its own is replaced (after a back-off that doubles with each exit in a row, up
 * to a minute), missing replicas are added as jobs of their own, extra ones are stopped (those
 * not yet placed first, then those not ready, then the one with the fewest requests in
 * service), and a replica that runs but is not ready yet is probed (GET of its readiness path
 * until it answers 200).
 *
 * Every `decideMs` (30 s, as KEDA's pollingInterval) it scrapes each ready replica's metrics
 * endpoint, builds the autoscaler's observation, calls the service's autoscaler (by name from
 * the registry) and records the decision: the replicas wanted and the GPUs kept from lending,
 * with an event whenever either changes. The scheduling loop reads `reservations()` each cycle,
 * so the core's lending stage lends what is not kept and reclaims borrowers when it rises.
 *
 * Each scrape also records what the replica served (its service-time summary's _count: requests
 * finished; its tokens counter) on its attempt's usage record, counting increases only
 * (store/usage.ts applyServed); a ready replica scaled down is scraped once more first.
 *
 * The server reaches a replica only at the host of the node it runs on and its own port, and
 * only at the paths its spec declared (replicaSpec.ts replicaUrl); it follows no redirect and
 * reads at most 1 MiB.
 */
import { serviceTokensMetric, type JobSpec, type ServiceSpec } from '../../api/spec.ts';
import type { Job } from '../../api/types.ts';
import type { Autoscaler, ReplicaDecision, ServiceShape } from '../../core/tidal/autoscaler.ts';
import { getAutoscaler } from '../../core/tidal/policies/index.ts';
import type { ReplicaRecord, ServedReport, ServiceRecord, ServiceReservation, Store } from '../../store/store.ts';
import { boundedBody } from '../agentLink.ts';
import { queueLoans } from './loans.ts';
import type { ServiceMetrics } from './metrics.ts';
import { observation, ScrapeTracker, type ReplicaScrape } from './observe.ts';
import { readMetrics } from './promText.ts';
import { freeOrdinal, freePort, portOf, replicaBase, replicaSpec, replicaUrl, type PortRange } from './replicaSpec.ts';

export interface ServiceControllerOptions {
  /** ms since the epoch. */
  readonly clock: () => number;
  /** Whether this server leads (only the leader runs services). */
  readonly isLeader: () => boolean;
  /** How often replicas are reconciled and probed (ms); default 1000. */
  readonly reconcileMs?: number;
  /** How often each service's autoscaler decides (ms); default 30000. */
  readonly decideMs?: number;
  /**
   * Seconds of the autoscaler's clock per second of the wall clock (default 1): a compressed
   * replay (`tide bench service-live`) runs its services' times this many times faster, so the
   * autoscaler sees the times the spec states.
   */
  readonly timeScale?: number;
  /** The ports handed to replicas (`--service-ports`); default 20000-29499. */
  readonly ports?: PortRange;
  /** Bounds one probe or scrape (ms); default 2000. */
  readonly httpTimeoutMs?: number;
  /** Told when replicas were added or stopped (the loop schedules them at once). */
  readonly onChange?: () => void;
  readonly metrics?: ServiceMetrics;
  readonly log?: (line: string) => void;
}

/** The most a probe or scrape reads from a replica. */
const MAX_SCRAPE_BYTES = 1024 * 1024;
/** Back-off after a replica exits on its own: doubles per exit in a row, at most this (ms). */
const MAX_BACKOFF_MS = 60_000;
/** A port whose replica failed (another process may hold it on its node) is not handed out again for this long (ms). */
const PORT_QUARANTINE_MS = 10 * 60_000;

/** What the controller keeps per service between ticks (rebuilt after a failover). */
interface ServiceState {
  autoscaler: Autoscaler;
  /** The shape the autoscaler was made with (rebuilt when bounds or the learned service time change). */
  shapeKey: string;
  learnedAt: number | null;
  readonly tracker: ScrapeTracker;
  lastDecideMs: number;
  /** Requests in service per replica run, from the last scrape. */
  inFlight: ReadonlyMap<string, number>;
  /** Open replicas seen at the last tick, and those this controller stopped. */
  known: Set<string>;
  readonly stopped: Set<string>;
  exits: number;
  nextStartMs: number;
  /** The autoscaler's recent decisions (wall ms), for the scale-down stabilization window. */
  recent: { at: number; desired: number; keepMilli: number }[];
}

const runOf = (j: Job): string => `${j.id}.${j.attempt}`;
/** The metrics read off a replica. */
const scrapedNames = (spec: ServiceSpec): string[] => [spec.metrics.rate, spec.metrics.queue, spec.metrics.inFlight, `${spec.metrics.serviceTime}_sum`, `${spec.metrics.serviceTime}_count`, serviceTokensMetric(spec)];
/** What a replica's scrape says it served (cumulative): requests finished and tokens produced. */
function servedOf(r: ReplicaRecord, spec: ServiceSpec, values: ReadonlyMap<string, number>): ServedReport {
  const requests = values.get(`${spec.metrics.serviceTime}_count`);
  const tokens = values.get(serviceTokensMetric(spec));
  return { jobId: r.job.id, attempt: r.job.attempt, ...(requests !== undefined ? { requests } : {}), ...(tokens !== undefined ? { tokens } : {}) };
}
const gpusPerReplica = (spec: JobSpec): number => {
  const g = spec.groups[0];
  return g ? (g.gpuCount * g.gpuMilli) / 1000 : 0;
};
/** Quota units of one replica (a fraction of a GPU counts 1, as the quota ledger counts it). */
const unitsPerReplica = (spec: JobSpec): number => spec.groups[0]?.gpuCount ?? 0;

export class ServiceController {
  private readonly states = new Map<string, ServiceState>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private held: ServiceReservation[] = [];
  private readonly scale: number;
  /** Ports whose replica failed, until when they are not handed out. */
  private readonly quarantine = new Map<number, number>();

  constructor(
    private readonly store: Store,
    private readonly o: ServiceControllerOptions,
  ) {
    this.scale = o.timeScale ?? 1;
  }

  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** GPUs the services keep from lending, as of the last tick (the loop hands them to the scheduler). */
  reservations(): readonly ServiceReservation[] {
    return this.held;
  }

  /** Records the borrowers the loop stopped for services (an event on each service, and the metric). */
  async reclaimed(preemptions: readonly { readonly jobId: string; readonly reclaim?: 'planned' | 'immediate'; readonly lender?: string }[]): Promise<void> {
    const bySvc = new Map<string, { planned: string[]; immediate: string[] }>();
    for (const p of preemptions) {
      if (!p.reclaim) continue;
      this.o.metrics?.evictions.inc({ kind: p.reclaim });
      const e = bySvc.get(p.lender ?? '') ?? { planned: [], immediate: [] };
      e[p.reclaim].push(p.jobId);
      bySvc.set(p.lender ?? '', e);
    }
    for (const [service, e] of bySvc) {
      if (service === '') continue;
      const parts = [
        ...(e.planned.length ? [`${e.planned.length} planned (checkpoint, then stop): ${e.planned.join(', ')}`] : []),
        ...(e.immediate.length ? [`${e.immediate.length} immediate (no grace: work since their last checkpoint is lost): ${e.immediate.join(', ')}`] : []),
      ];
      await this.store.addEvent({ type: 'service:reclaim', jobId: service, message: `borrowers evicted for this service: ${parts.join('; ')}` }, this.o.clock());
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.tick()
        .catch((e: unknown) => this.o.log?.(`services: ${(e as Error).message}`))
        .finally(() => {
          this.running = null;
          this.schedule(this.o.reconcileMs ?? 1000);
        });
    }, ms);
  }

  /** One round: reconcile every service, and let those due decide. Exposed for tests. */
  async tick(): Promise<void> {
    if (!this.o.isLeader()) {
      this.states.clear();
      this.held = [];
      return;
    }
    const services = await this.store.listServices();
    const replicas = await this.store.listReplicas(services.map((s) => s.job.id));
    const bySvc = new Map<string, ReplicaRecord[]>();
    for (const r of replicas) bySvc.set(r.job.serviceId ?? '', [...(bySvc.get(r.job.serviceId ?? '') ?? []), r]);
    const ports = new Set<number>();
    for (const r of replicas) {
      const p = portOf(r.job.spec);
      if (p !== null) ports.add(p);
    }
    for (const [p, until] of this.quarantine) {
      if (until <= this.o.clock()) this.quarantine.delete(p);
      else ports.add(p);
    }
    for (const id of this.states.keys()) if (!services.some((s) => s.job.id === id)) this.states.delete(id);
    let changed = false;
    const due: ServiceRecord[] = [];
    for (const s of services) {
      const state = this.stateOf(s);
      const reps = bySvc.get(s.job.id) ?? [];
      changed = (await this.reconcile(s, state, reps, ports)) || changed;
      if (this.o.clock() - state.lastDecideMs >= (this.o.decideMs ?? 30_000)) due.push(s);
    }
    if (due.length) {
      const loans = queueLoans(await this.store.snapshot());
      for (const s of due) {
        const state = this.stateOf(s);
        changed = (await this.decide(s, state, bySvc.get(s.job.id) ?? [], loans.get(s.job.queue)?.lent ?? 0)) || changed;
      }
    }
    // What the services keep, with their replicas now (a decision above may have changed it).
    const fresh = due.length ? await this.store.listServices() : services;
    const open = changed ? await this.store.listReplicas(fresh.map((s) => s.job.id)) : replicas;
    this.held = fresh.map((s) => {
      const reps = open.filter((r) => r.job.serviceId === s.job.id && r.job.state !== 'cancelled').map((r) => r.job.id);
      const units = unitsPerReplica(s.job.spec);
      return { service: s.job.id, queue: s.job.queue, keepGpus: Math.max(s.keepMilli / 1000, s.desired * units), replicas: reps, urgent: s.urgent, reason: s.reason ?? '' };
    });
    if (changed) this.o.onChange?.();
  }

  private stateOf(s: ServiceRecord): ServiceState {
    let state = this.states.get(s.job.id);
    if (!state) {
      const spec = s.job.spec.service as ServiceSpec;
      const made = this.autoscalerFor(s, null);
      state = {
        autoscaler: made.autoscaler,
        shapeKey: made.key,
        learnedAt: null,
        tracker: new ScrapeTracker(spec.metrics),
        lastDecideMs: s.decidedAt ?? s.job.startedAt ?? this.o.clock(),
        inFlight: new Map(),
        known: new Set(),
        stopped: new Set(),
        exits: 0,
        nextStartMs: 0,
        recent: [],
      };
      this.states.set(s.job.id, state);
    }
    return state;
  }

  /** The service's autoscaler for its current bounds and service time (the spec's, else `learned`, else 1 s). */
  private autoscalerFor(s: ServiceRecord, learned: number | null): { autoscaler: Autoscaler; key: string } {
    const spec = s.job.spec.service as ServiceSpec;
    const shape: ServiceShape = {
      minReplicas: s.minReplicas,
      maxReplicas: s.maxReplicas,
      gpusPerReplica: gpusPerReplica(s.job.spec),
      concurrency: spec.concurrency,
      serviceSeconds: spec.serviceSeconds ?? learned ?? 1,
      sloQuantile: spec.slo.quantile,
      sloWaitSeconds: spec.slo.waitSeconds,
      sloWindowSeconds: spec.slo.windowSeconds,
      loadSeconds: spec.loadSeconds,
      evictSeconds: spec.evictSeconds,
    };
    let factory = getAutoscaler(spec.autoscaler);
    if (!factory) {
      this.o.log?.(`service ${s.job.id}: autoscaler '${spec.autoscaler}' is not known here: using reactive`);
      factory = getAutoscaler('reactive');
    }
    if (!factory) throw new Error('no reactive autoscaler');
    return { autoscaler: factory(shape, spec.options), key: `${shape.minReplicas}/${shape.maxReplicas}/${shape.serviceSeconds}` };
  }

  /** Probes, replaces, adds and stops replicas; true when it added or stopped one. */
  private async reconcile(s: ServiceRecord, state: ServiceState, reps: readonly ReplicaRecord[], ports: Set<number>): Promise<boolean> {
    const now = this.o.clock();
    const spec = s.job.spec.service as ServiceSpec;
    const live = reps.filter((r) => r.job.state !== 'cancelled');
    // Replicas that left without being stopped here exited on their own: replace them, after a back-off.
    const ids = new Set(live.map((r) => r.job.id));
    for (const id of state.known) {
      if (ids.has(id) || state.stopped.has(id)) continue;
      const gone = await this.store.getJob(id);
      if (!gone || gone.state === 'cancelled') continue;
      state.exits++;
      const port = portOf(gone.spec);
      if (gone.state === 'failed' && port !== null) this.quarantine.set(port, now + PORT_QUARANTINE_MS);
      const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (state.exits - 1));
      state.nextStartMs = now + backoff;
      this.o.metrics?.replicaRestarts.inc();
      await this.store.addEvent({ type: 'service:replica-exited', jobId: s.job.id, message: `replica ${id} ended ${gone.state}${gone.reason ? ` (${gone.reason})` : ''}: replaced in ${(backoff / 1000).toFixed(0)} s` }, now);
    }
    for (const id of state.stopped) if (!reps.some((r) => r.job.id === id)) state.stopped.delete(id);
    state.known = ids;
    // Readiness: GET the path until it answers 200.
    await Promise.all(
      live
        .filter((r) => !r.ready && r.taskState === 'running' && r.job.state === 'running')
        .map(async (r) => {
          const url = replicaUrl(r.nodeAddress, r.job.spec, spec.readiness.path);
          if (url === null) return;
          const res = await this.get(url).catch(() => null);
          if (res?.status === 200 && (await this.store.markReplicaReady(r.job.id, r.job.attempt))) state.exits = 0;
        }),
    );
    let changed = false;
    if (live.length < s.desired && now >= state.nextStartMs) {
      const names = live.map((r) => r.job.name);
      for (let i = live.length; i < s.desired; i++) {
        const port = freePort(ports, this.o.ports);
        if (port === null) {
          this.o.log?.(`service ${s.job.id}: no free replica port`);
          break;
        }
        const ordinal = freeOrdinal(names, replicaBase(s.job.spec.name));
        const spec1 = replicaSpec(s.job, ordinal, port);
        const added = await this.store.addReplica(s.job.id, spec1, now);
        if (!added) break;
        ports.add(port);
        names.push(spec1.name);
        state.known.add(added.id);
        changed = true;
      }
    } else if (live.length > s.desired) {
      const stage = (r: ReplicaRecord): number => (r.node === null ? 0 : !r.ready ? 1 : 2);
      const order = [...live].sort((a, b) => stage(a) - stage(b) || (state.inFlight.get(runOf(a.job)) ?? 0) - (state.inFlight.get(runOf(b.job)) ?? 0) || Number(b.job.id) - Number(a.job.id));
      for (const r of order.slice(0, live.length - s.desired)) {
        if (r.ready) await this.recordServed(spec, [r]);
        const inFlight = state.inFlight.get(runOf(r.job)) ?? 0;
        const why = `scaled down to ${s.desired} replica(s)${s.reason ? `: ${s.reason}` : ''} (${r.node === null ? 'not placed yet' : !r.ready ? 'not ready yet' : `${inFlight} request(s) in service`})`;
        if (await this.store.stopReplica(r.job.id, why, now)) {
          state.stopped.add(r.job.id);
          state.known.delete(r.job.id);
          changed = true;
        }
      }
    }
    return changed;
  }

  /** Scrapes the ready replicas, asks the autoscaler and records its decision; true when the desired count changed. */
  private async decide(s: ServiceRecord, state: ServiceState, reps: readonly ReplicaRecord[], lentGpus: number): Promise<boolean> {
    const now = this.o.clock();
    const spec = s.job.spec.service as ServiceSpec;
    const live = reps.filter((r) => r.job.state !== 'cancelled');
    const ready = live.filter((r) => r.ready);
    const served: ServedReport[] = [];
    const scrapes: ReplicaScrape[] = await Promise.all(
      ready.map(async (r): Promise<ReplicaScrape> => {
        const values = await this.scrape(r, spec);
        if (!values) return { run: runOf(r.job) };
        served.push(servedOf(r, spec, values));
        return { run: runOf(r.job), values };
      }),
    );
    await this.store.recordServed(served).catch((e: unknown) => this.o.log?.(`service ${s.job.id}: recording what its replicas served: ${(e as Error).message}`));
    const round = state.tracker.round(scrapes);
    state.inFlight = round.inFlight;
    // A learned service time (the replicas measure it on the wall clock) rebuilds the autoscaler when it moved by a fifth.
    const learned = state.tracker.serviceSeconds === null ? null : state.tracker.serviceSeconds * this.scale;
    if (spec.serviceSeconds === null && learned !== null && (state.learnedAt === null || Math.abs(learned - state.learnedAt) > 0.2 * state.learnedAt)) state.learnedAt = learned;
    const made = this.autoscalerFor(s, state.learnedAt);
    if (made.key !== state.shapeKey) {
      state.autoscaler = made.autoscaler;
      state.shapeKey = made.key;
    }
    const interval = ((now - state.lastDecideMs) / 1000) * this.scale;
    state.lastDecideMs = now;
    const stopping = reps.length - live.length;
    const loading = live.length - ready.length;
    const obs = observation((now / 1000) * this.scale, interval, round, ready.length, loading, stopping, lentGpus);
    const d: ReplicaDecision = state.autoscaler.decide(obs);
    const decided = Math.min(s.maxReplicas, Math.max(s.minReplicas, Math.round(d.replicas)));
    const gpr = gpusPerReplica(s.job.spec);
    const units = unitsPerReplica(s.job.spec);
    const keepReplicas = Math.max(decided, gpr > 0 ? Math.ceil(d.keepGpus / gpr - 1e-9) : 0);
    let keepMilli = Math.min(s.maxReplicas, keepReplicas) * units * 1000;
    // Scale-down stabilization (HPA's): what takes effect is the highest decision of the window.
    const windowMs = (spec.scaleDownDelaySeconds * 1000) / this.scale;
    state.recent = [...state.recent.filter((r) => now - r.at < windowMs), { at: now, desired: decided, keepMilli }];
    const desired = Math.max(...state.recent.map((r) => Math.min(s.maxReplicas, Math.max(s.minReplicas, r.desired))));
    keepMilli = Math.max(...state.recent.map((r) => r.keepMilli));
    this.o.metrics?.arrivalRate.set({ service: s.job.id }, interval > 0 ? obs.arrivals / interval : 0);
    const rising = keepMilli > s.keepMilli || desired > s.desired;
    const urgent = d.urgent && rising;
    const held = desired > decided ? `; holds ${desired} (highest in the last ${spec.scaleDownDelaySeconds} s)` : '';
    const reason = `${d.reason}${held}; ${ready.length} ready, ${loading} loading${round.failed ? `, ${round.failed} scrape(s) failed` : ''}`;
    let event: { type: string; message: string } | undefined;
    if (desired !== s.desired) {
      this.o.metrics?.scaleDecisions.inc({ direction: desired > s.desired ? 'up' : 'down' });
      event = { type: desired > s.desired ? 'service:scale-up' : 'service:scale-down', message: `${s.desired} → ${desired} replicas, keeps ${keepMilli / 1000} GPU(s) from lending${urgent ? ' (urgent: lent GPUs are reclaimed at once)' : ''}: ${reason}` };
    } else if (keepMilli !== s.keepMilli) {
      event = { type: 'service:keep', message: `keeps ${keepMilli / 1000} GPU(s) from lending (was ${s.keepMilli / 1000})${urgent ? ', urgent' : rising ? ', planned: borrowers checkpoint ahead of the rise' : ''}: ${reason}` };
    }
    await this.store.decideService(s.job.id, { desired, keepMilli, urgent, reason }, now, event);
    if (rising && urgent) {
      // Demand rose faster than the autoscaler foresaw: what it needs now beyond what is not lent is a shortfall.
      const pool = s.maxReplicas * units;
      const short = keepMilli / 1000 - (pool - lentGpus);
      if (short > 0) await this.store.addEvent({ type: 'service:shortfall', jobId: s.job.id, message: `needs ${short} GPU(s) now that are lent: their borrowers are stopped at once` }, now);
    }
    return desired !== s.desired;
  }

  /** A replica's metrics (undefined when the scrape failed, counted in the metric). */
  private async scrape(r: ReplicaRecord, spec: ServiceSpec): Promise<ReadonlyMap<string, number> | undefined> {
    const url = replicaUrl(r.nodeAddress, r.job.spec, spec.metrics.path);
    const res = url === null ? null : await this.get(url).catch(() => null);
    if (res?.status !== 200) {
      this.o.metrics?.scrapeFailures.inc();
      return undefined;
    }
    return readMetrics(res.text, scrapedNames(spec));
  }

  /** Scrapes replicas and records what they served (a failure is logged: the next scrape catches up). */
  private async recordServed(spec: ServiceSpec, reps: readonly ReplicaRecord[]): Promise<void> {
    const served: ServedReport[] = [];
    for (const r of reps) {
      const values = await this.scrape(r, spec);
      if (values) served.push(servedOf(r, spec, values));
    }
    await this.store.recordServed(served).catch((e: unknown) => this.o.log?.(`services: recording what replicas served: ${(e as Error).message}`));
  }

  /** GET with a deadline, no redirects and a bounded body. */
  private async get(url: string): Promise<{ status: number; text: string }> {
    const res = await fetch(url, { signal: AbortSignal.timeout(this.o.httpTimeoutMs ?? 2000), redirect: 'manual' });
    const body = await boundedBody(res, MAX_SCRAPE_BYTES);
    return { status: res.status, text: body.toString('utf8') };
  }
}
