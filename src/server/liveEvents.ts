/**
 * Live updates for the dashboard, and the cluster's recent telemetry.
 *
 * `GET /v1/stream` is a server-sent-event stream. The hub behind it reads the audit log from the
 * last event it has seen (one indexed query every `pollMs`, only while someone listens; every
 * change of a job writes an event, so this sees changes made by any server sharing the
 * database) and pushes, to each listener allowed to see it:
 *   `job`    {job}    a job that changed (a tenant: its own jobs only)
 *   `event`  {event}  the audit-log event (a tenant: its own jobs' events only)
 *   `nodes`  {nodes}  the nodes with their use and telemetry, when they changed (everyone: the
 *                     same as GET /v1/nodes, which names no job or tenant)
 * and first `hello` {eventId, role, tenant}. A comment line every 15 s keeps proxies from closing
 * an idle stream. `?once=true` sends `hello` and the current `nodes` and ends (for a client that
 * only checks it can listen).
 *
 * `GET /v1/telemetry?since=MS` answers the cluster-wide samples (every `sampleMs`, bounded to
 * `maxPoints`) taken since then: GPUs allocated, allocated but idle, free; mean utilisation,
 * power and memory in use. `GET /v1/placements` lists what holds each GPU now (a tenant sees
 * other tenants' tasks as anonymous `{mine: false}` holders, never their job or tenant).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Job, JobEvent, NodeInfo, TelemetryPoint } from '../api/types.ts';
import type { Store } from '../store/store.ts';
import { openJobsById } from '../store/openJobIndex.ts';
import { authenticate, requireRole, type Principal } from './auth.ts';
import { QueryReader } from './query.ts';
import { answers, DASHBOARD_ANSWERS } from '../api/apiSchemas.ts';

/** A GPU counts as idle when it is held but its utilisation is below this (percent). */
export const IDLE_UTILIZATION = 5;

export interface LiveHubOptions {
  readonly pollMs?: number;
  readonly sampleMs?: number;
  readonly maxPoints?: number;
  readonly keepAliveMs?: number;
}

interface Listener {
  readonly p: Principal;
  readonly send: (event: string, data: unknown) => void;
  readonly comment: () => void;
}

const visibleTo = (p: Principal, tenant: string | null): boolean => p.role === 'admin' || (tenant !== null && tenant === p.tenant);

/** One cluster-wide telemetry sample of the nodes. */
export function samplePoint(nodes: readonly NodeInfo[], at: number): TelemetryPoint {
  let gpus = 0;
  let allocated = 0;
  let allocatedIdle = 0;
  let free = 0;
  let util = 0;
  let counted = 0;
  let powerWatts = 0;
  let memoryUsedMib = 0;
  for (const n of nodes) {
    if (n.state === 'lost') continue;
    const tele = new Map(n.telemetry.map((t) => [t.index, t]));
    n.gpus.forEach((g, i) => {
      gpus++;
      const used = n.gpuUsedMilli[i] ?? 0;
      const t = tele.get(g.index);
      if (used > 0) {
        allocated++;
        if (t && t.utilization < IDLE_UTILIZATION) allocatedIdle++;
      } else if (n.state === 'ready') free++;
      if (t) {
        util += t.utilization;
        counted++;
        powerWatts += t.powerWatts;
        memoryUsedMib += t.memoryUsedMib;
      }
    });
  }
  return { at, gpus, allocated, allocatedIdle, free, utilization: counted ? Math.round((10 * util) / counted) / 10 : 0, powerWatts: Math.round(powerWatts), memoryUsedMib };
}

export class LiveHub {
  private readonly listeners = new Set<Listener>();
  private readonly history: TelemetryPoint[] = [];
  private lastEventId: number | null = null;
  private lastNodes = '';
  private polling = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly pollMs: number;
  private readonly maxPoints: number;

  constructor(private readonly store: Store, private readonly clock: () => number, o: LiveHubOptions = {}) {
    this.pollMs = o.pollMs ?? 250;
    this.maxPoints = o.maxPoints ?? 2160; // 6 h at 10 s
    const every = (ms: number, f: () => void): void => {
      const t = setInterval(f, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.pollMs, () => void this.poll());
    every(o.sampleMs ?? 10_000, () => void this.sample());
    every(o.keepAliveMs ?? 15_000, () => this.listeners.forEach((l) => l.comment()));
    void this.sample();
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  telemetry(since: number): TelemetryPoint[] {
    return this.history.filter((p) => p.at > since);
  }

  async sample(): Promise<void> {
    try {
      this.history.push(samplePoint(await this.store.listNodes(), this.clock()));
      if (this.history.length > this.maxPoints) this.history.splice(0, this.history.length - this.maxPoints);
    } catch {
      // the store is closing or unavailable: the next sample tries again
    }
  }

  /** The id of the newest event (0 when there is none). */
  private async latestEventId(): Promise<number> {
    return (await this.store.listEvents({ order: 'desc', limit: 1 }))[0]?.id ?? 0;
  }

  async listen(p: Principal, send: Listener['send'], comment: Listener['comment']): Promise<() => void> {
    if (this.lastEventId === null) this.lastEventId = await this.latestEventId();
    const l: Listener = { p, send, comment };
    send('hello', { eventId: this.lastEventId, role: p.role, tenant: p.tenant ?? null });
    send('nodes', { nodes: await this.store.listNodes() });
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Reads the events since the last poll and the nodes, and pushes what changed. */
  private async poll(): Promise<void> {
    if (this.polling || this.listeners.size === 0) return;
    this.polling = true;
    try {
      if (this.lastEventId === null) this.lastEventId = await this.latestEventId();
      const events: JobEvent[] = await this.store.listEvents({ afterId: this.lastEventId, order: 'asc', limit: 1000 });
      const jobs = new Map<string, Job | null>();
      for (const e of events) if (e.jobId !== null && !jobs.has(e.jobId)) jobs.set(e.jobId, await this.store.getJob(e.jobId));
      for (const e of events) {
        this.lastEventId = e.id;
        const owner = e.jobId !== null ? (jobs.get(e.jobId)?.tenant ?? null) : e.tenant;
        for (const l of this.listeners) if (visibleTo(l.p, owner)) l.send('event', { event: e });
      }
      for (const job of jobs.values()) if (job) for (const l of this.listeners) if (visibleTo(l.p, job.tenant)) l.send('job', { job });
      const nodes = await this.store.listNodes();
      const text = JSON.stringify(nodes.map((n) => [n.id, n.state, n.gpuUsedMilli, n.telemetry]));
      if (text !== this.lastNodes) {
        this.lastNodes = text;
        for (const l of this.listeners) l.send('nodes', { nodes });
      }
    } catch {
      // the store is closing or unavailable: the next poll tries again
    } finally {
      this.polling = false;
    }
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    this.listeners.clear();
  }
}

/** Registers /v1/stream, /v1/telemetry and /v1/placements (see the module comment). */
export function registerLiveRoutes(app: FastifyInstance, o: { store: Store; clock: () => number; hub?: LiveHub }): LiveHub {
  const { store, clock } = o;
  const hub = o.hub ?? new LiveHub(store, clock);
  const open = new Set<FastifyReply>();
  app.addHook('preClose', async () => {
    hub.close();
    for (const r of open) r.raw.end();
  });
  const auth = async (req: FastifyRequest): Promise<Principal> => {
    const p = await authenticate(store, req.headers.authorization, clock());
    requireRole(p, 'tenant', 'admin');
    return p;
  };

  app.get('/v1/stream', {
    schema: {
      description: 'Live updates (text/event-stream): hello, then job, event and nodes events as they change (a tenant: its own jobs). once=true: hello and nodes, then the stream ends.',
      tags: ['live'],
      querystring: { type: 'object', properties: { once: { type: 'string', enum: ['true', 'false'] } } },
      response: answers(200, DASHBOARD_ANSWERS.stream),
    },
  }, async (req, reply) => {
    const p = await auth(req);
    const q = new QueryReader(req.query);
    const once = q.oneOf('once', ['true', 'false'] as const) === 'true';
    q.done();
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const send = (event: string, data: unknown): void => {
      raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const stop = await hub.listen(p, send, () => raw.write(': keep-alive\n\n'));
    if (once) {
      stop();
      raw.end();
      return;
    }
    open.add(reply);
    req.raw.on('close', () => {
      stop();
      open.delete(reply);
    });
  });

  app.get('/v1/telemetry', {
    schema: {
      description: 'Cluster-wide telemetry samples (every 10 s, the last 6 hours) taken after since (ms since epoch; default: all): GPUs allocated, allocated but idle (utilisation < 5 %), free; mean utilisation, power, memory in use.',
      tags: ['cluster'],
      querystring: { type: 'object', properties: { since: { type: 'string' } } },
      response: answers(200, DASHBOARD_ANSWERS.telemetry),
    },
  }, async (req) => {
    await auth(req);
    const q = new QueryReader(req.query);
    const since = q.int('since', 0, Number.MAX_SAFE_INTEGER) ?? 0;
    q.done();
    return { points: hub.telemetry(since), idleUtilization: IDLE_UTILIZATION };
  });

  app.get('/v1/placements', {
    schema: { description: "What holds each GPU now: {node, gpus, gpuMilli, state, mine, job?, name?, tenant?, queue?} per active task. A tenant sees other tenants' tasks without their job, name or tenant.", tags: ['cluster'], response: answers(200, DASHBOARD_ANSWERS.placements) },
  }, async (req) => {
    const p = await auth(req);
    const snap = await store.snapshot();
    const jobs = openJobsById(snap.openJobs);
    const placements = snap.activeTasks.map((t) => {
      const job = jobs.get(t.jobId);
      const mine = job !== undefined && visibleTo(p, job.tenant);
      return { node: t.node, gpus: t.gpus, gpuMilli: t.gpuMilli, state: t.state, mine, ...(mine && job ? { job: job.id, name: job.name, tenant: job.tenant, queue: job.queue, task: t.index } : {}) };
    });
    return { placements };
  });
  return hub;
}
