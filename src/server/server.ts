/**
 * Starts a Tide server: opens the store (SQLite in the data directory, or PostgreSQL), applies
 * the cluster config, serves the API (on 127.0.0.1 unless told another host) and runs the scheduling loop whenever it holds
 * the scheduler lease (always, on SQLite; one of several servers, on PostgreSQL).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { openStore } from '../store/sqlStore.ts';
import type { Store } from '../store/store.ts';
import { buildApp } from './app.ts';
import { hashToken } from './auth.ts';
import { EMPTY_CONFIG, energyStagesOf, maxSubmitJobsOf, schedulingOptions, type ClusterConfig } from './config.ts';
import { NodePower, nodePowerMetrics } from './power/nodePower.ts';
import { stageNames } from './scheduling/energyStages.ts';
import { NodeWakeups } from './nodeWakeups.ts';
import { SchedulingLoop } from './loop.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { CoreSchedulerAdapter, type SchedulerOptions } from './scheduling/coreAdapter.ts';
import { PlannerSlot, ThreadedPlanner, type Planner } from './scheduling/plannerThread.ts';
import { UserError } from '../util/errors.ts';
import { isWildcard, urlHost } from '../util/listen.ts';
import { agentLogKeys } from './agentLink.ts';
import { idleConfigOf } from './idle/idleConfig.ts';
import { registerIdleMetrics } from './idle/idleMetrics.ts';
import { IdleMonitor } from './idle/idleMonitor.ts';
import { ServiceController } from './services/controller.ts';
import { serviceMetrics } from './services/metrics.ts';
import { DEFAULT_PRICES } from '../core/energy/pricing.ts';
import { BudgetGate } from './usage/budgetGate.ts';

/**
 * The live server's default job scheduler and placement: the simulator's ('tide': preemptive,
 * heterogeneity-aware, fair-share across queues; 'tide' placement against fragmentation), fed
 * from the store what the simulator feeds it. `--scheduler fifo` (priority then FIFO, never
 * preempting on its own) stays selectable.
 */
export const LIVE_DEFAULT_SCHEDULER = 'tide';
export const LIVE_DEFAULT_PLACEMENT = 'tide';

/**
 * Connections the kernel holds for the server until it accepts them (capped by the kernel's
 * net.core.somaxconn). Every agent holds two (its heartbeats and its wait for work), and they
 * all connect again at once after a restart or a network blip: with Node's default of 511, 1,250
 * agents connecting together overflowed the queue, the kernel dropped their handshakes, and
 * they waited out TCP's SYN retries (1, 3, 7, 15, 31 s) or were reset, past half the node lease
 * where an agent fences its tasks.
 */
const LISTEN_BACKLOG = 8192;

export interface ServerOptions {
  /** Where SQLite keeps its file (ignored with databaseUrl). */
  readonly dataDir: string;
  /** postgres://… for PostgreSQL; memory: for a throwaway in-memory store. */
  readonly databaseUrl?: string;
  /** The address to listen on (default 127.0.0.1: this machine only); 0.0.0.0 or :: for every interface. */
  readonly host?: string;
  readonly port: number;
  readonly adminToken: string;
  readonly agentToken: string;
  readonly config?: ClusterConfig;
  readonly scheduler?: string;
  readonly placement?: string;
  readonly schedulerOptions?: SchedulerOptions;
  /**
   * Plan on a worker thread (scheduling/plannerThread.ts), so that API requests and heartbeats
   * are not held up by a long cycle (`tide server` does unless --no-scheduler-thread). Falls back
   * to this thread (with a log line) where the worker cannot start or dies.
   */
  readonly schedulerThread?: boolean;
  readonly tickMs?: number;
  readonly leaseTtlMs?: number;
  readonly nodeLeaseMs?: number;
  readonly bodyLimit?: number;
  readonly serverId?: string;
  readonly log?: (line: string) => void;
  /** Services (docs/services.md): how often replicas are reconciled and autoscalers decide (ms), the autoscalers' time scale and the replicas' ports. */
  readonly services?: { readonly reconcileMs?: number; readonly decideMs?: number; readonly timeScale?: number; readonly ports?: { readonly first: number; readonly last: number } };
}

export interface RunningServer {
  /** Where a client on this machine reaches the API (a wildcard host is given as 127.0.0.1). */
  readonly url: string;
  readonly store: Store;
  readonly loop: SchedulingLoop;
  readonly app: FastifyInstance;
  /** What /metrics shows (benchmarks read the request durations in the process). */
  readonly metrics: Metrics;
  readonly serverId: string;
  /** Resolves once the scheduling loop has started (the scheduler thread ready, or known not to start). */
  readonly looping: Promise<void>;
  close(): Promise<void>;
}

/** What the core is made of: the scheduler, its placement, options and live inputs (the thread is started with them). */
function coreChoice(o: ServerOptions, config: ClusterConfig) {
  // The energy stages run live as `tide bench energy` runs them (scheduling/energyStages.ts, docs/energy.md).
  const energy = energyStagesOf(config);
  const live = {
    ...(config.gpuSpeeds ? { gpuSpeeds: config.gpuSpeeds } : {}),
    tenants: config.tenants,
    ...(config.scheduling?.usageHalfLifeHours !== undefined ? { usageHalfLifeHours: config.scheduling.usageHalfLifeHours } : {}),
    ...(config.scheduling?.arrivalsPerCycle !== undefined ? { arrivalsPerCycle: config.scheduling.arrivalsPerCycle } : {}),
    energy: energy.stages,
  };
  return { scheduler: o.scheduler ?? LIVE_DEFAULT_SCHEDULER, placement: o.placement ?? LIVE_DEFAULT_PLACEMENT, options: { ...schedulingOptions(config), ...o.schedulerOptions }, energy, live };
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  // The scheduler thread starts (loading its sources: about a second) while the store opens.
  const core = coreChoice(o, o.config ?? EMPTY_CONFIG);
  const threadStart = o.schedulerThread ? ThreadedPlanner.start(core.scheduler, core.placement, core.options, core.live).catch((e: unknown) => e as Error) : null;
  try {
    return await startWith(o, core, threadStart);
  } catch (e) {
    // A thread left running would keep the process alive after the error.
    const thread = await threadStart;
    if (thread instanceof ThreadedPlanner) await thread.close();
    throw e;
  }
}

async function startWith(o: ServerOptions, core: ReturnType<typeof coreChoice>, threadStart: Promise<ThreadedPlanner | Error> | null): Promise<RunningServer> {
  const log = o.log ?? (() => {});
  let url = o.databaseUrl;
  if (!url) {
    mkdirSync(o.dataDir, { recursive: true });
    url = `sqlite:${join(resolve(o.dataDir), 'tide.db')}`;
  }
  const store = await openStore(url);
  const now = Date.now();
  const config = o.config ?? EMPTY_CONFIG;
  await store.ensureTenant('default', now);
  // Created once: a restart keeps what the admin has set on it since (quota, tenants).
  if (!(await store.listQueues()).some((q) => q.name === 'default')) await store.putQueue({ name: 'default', gpuQuota: null, borrowingLimit: null }, now);
  await store.putToken(hashToken(o.adminToken), { role: 'admin', tenant: null }, now);
  await store.putToken(hashToken(o.agentToken), { role: 'agent', tenant: null }, now);
  // A replaced admin or bootstrap token stops working (rotation by flags or config and a restart).
  for (const [role, token] of [['admin', o.adminToken], ['agent', o.agentToken]] as const) {
    const revoked = await store.revokeRoleExcept(role, [hashToken(token)], now);
    if (revoked.length) log(`revoked the previous ${role} token(s) ${revoked.join(', ')}: replaced by the one this server was started with`);
  }
  for (const t of config.tenants) {
    await store.ensureTenant(t.name, now);
    for (const token of t.tokens) await store.putToken(hashToken(token), { role: 'tenant', tenant: t.name }, now);
  }
  for (const q of config.queues) await store.putQueue(q, now);
  for (const b of config.budgets ?? []) await store.putBudget(b, now);
  const prices = config.energy ?? DEFAULT_PRICES;

  const serverId = o.serverId ?? `server-${randomBytes(4).toString('hex')}`;
  const metrics = createMetrics(store);
  const { scheduler, placement, options, energy, live } = core;
  log(`energy stages: ${stageNames(energy)}`);
  const adapter = await CoreSchedulerAdapter.create(scheduler, placement, options, live);
  // The scheduler thread takes the slot once it has started (after listen, below).
  const slot = new PlannerSlot(adapter, (e) => log(`scheduler thread lost (${e.message}): planning on the request thread from now on`));
  let planner: Planner = slot;
  let thread: ThreadedPlanner | null = null;
  const idleConfig = idleConfigOf(config.idle);
  const idleMetrics = registerIdleMetrics(metrics.registry, store);
  const idle = new IdleMonitor(store, idleConfig, { maxGapMs: o.nodeLeaseMs ?? 15_000, onIdleSeconds: (tenant, s) => idleMetrics.addIdleSeconds(tenant, s) });
  // Budgets hold a tenant's pending jobs once its usage reaches a limit (usage/budgetGate.ts).
  planner = new BudgetGate(planner, store, prices);
  let lastError = '';
  const svcMetrics = serviceMetrics(metrics.registry, store);
  // Set once the loop exists: the controller runs only while this server leads the loop.
  let leading = (): boolean => false;
  let poke = (): void => {};
  const services = new ServiceController(store, {
    clock: Date.now,
    isLeader: () => leading(),
    ...(o.services?.reconcileMs !== undefined ? { reconcileMs: o.services.reconcileMs } : {}),
    ...(o.services?.decideMs !== undefined ? { decideMs: o.services.decideMs } : {}),
    ...(o.services?.timeScale !== undefined ? { timeScale: o.services.timeScale } : {}),
    ...(o.services?.ports !== undefined ? { ports: o.services.ports } : {}),
    onChange: () => poke(),
    metrics: svcMetrics,
    log,
  });
  // Suspends and resumes the consolidate stage asks for (Slurm's power saving: power/nodePower.ts).
  const power = new NodePower(store, energy.nodePower, { log, clock: Date.now, onChange: () => poke(), onAction: nodePowerMetrics(metrics.registry) });
  // Agents wait for news of their node between heartbeats; the loop's binds and stops wake them.
  const wakeups = new NodeWakeups();
  const loop = new SchedulingLoop(store, planner, {
    idle,
    onNodesChanged: (nodes) => wakeups.wake(nodes),
    power,
    reservations: () => services.reservations(),
    onReclaim: (preemptions) => void services.reclaimed(preemptions).catch((e: unknown) => log(`services: ${(e as Error).message}`)),
    serverId,
    tickMs: o.tickMs ?? 1000,
    leaseTtlMs: o.leaseTtlMs ?? 3000,
    nodeLeaseMs: o.nodeLeaseMs ?? 15_000,
    clock: Date.now,
    onCycle: (seconds) => {
      metrics.cycleSeconds.observe(seconds);
      metrics.backlog.set(loop.backlog);
    },
    onAdmitted: (wait, queue) => metrics.admissionWait.observe({ queue }, wait),
    onError: (e) => {
      const msg = (e as Error).message ?? String(e);
      if (msg !== lastError) log(`scheduling loop: ${msg}`);
      lastError = msg;
    },
    onLeadership: (leader) => log(leader ? `${serverId}: leading the scheduling loop` : `${serverId}: standing by (another server leads)`),
  });
  leading = () => loop.isLeader;
  poke = () => loop.poke();
  const app = await buildApp({
    store,
    metrics,
    clock: Date.now,
    serverId,
    isLeader: () => loop.isLeader,
    onSubmit: () => loop.poke(),
    maxSubmitJobs: (tenant) => maxSubmitJobsOf(config, tenant),
    ...(o.services?.timeScale !== undefined ? { serviceTimeScale: o.services.timeScale } : {}),
    agentLogKey: agentLogKeys(o.adminToken),
    nodeLeaseMs: o.nodeLeaseMs ?? 15_000,
    idle: idleConfig,
    prices,
    wakeups,
    ...(o.bodyLimit !== undefined ? { bodyLimit: o.bodyLimit } : {}),
  });
  // Finished usage records are folded into daily rollups in the background (store/usage.ts).
  const rollUp = (): void => void store.rollUpUsage(Date.now(), prices.utcOffsetHours).catch((e: unknown) => log(`usage rollup: ${(e as Error).message}`));
  const rollUps = setInterval(rollUp, 10 * 60_000);
  rollUps.unref();
  const host = o.host ?? '127.0.0.1';
  try {
    await app.listen({ host, port: o.port, backlog: LISTEN_BACKLOG });
  } catch (e) {
    clearInterval(rollUps);
    await store.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UserError(`port ${o.port} is in use on ${host} (another Tide server?): pick one with --port`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw new UserError(`cannot listen on ${host}: not an address of this machine (${code})`);
    throw e;
  }
  const bound = app.server.address();
  const port = typeof bound === 'object' && bound ? bound.port : o.port;
  // The API answers at once; the loop (and the services, which act only while it leads) starts
  // once the scheduler thread is ready or known not to start.
  let closing = false;
  const looping = (async (): Promise<void> => {
    const started = await threadStart;
    if (started instanceof ThreadedPlanner) {
      if (closing) return void (await started.close());
      slot.use((thread = started));
      log('scheduling on a thread of its own');
    } else if (started) log(`scheduler thread could not start (${started.message}): planning on the request thread`);
    if (closing) return;
    loop.start();
    services.start();
  })();
  rollUp();
  return {
    url: `http://${urlHost(isWildcard(host) ? '127.0.0.1' : host)}:${port}`,
    store,
    loop,
    app,
    metrics,
    serverId,
    looping,
    async close() {
      closing = true;
      await looping;
      await services.stop();
      clearInterval(rollUps);
      await loop.stop();
      await thread?.close();
      await app.close();
      await store.close();
    },
  };
}
