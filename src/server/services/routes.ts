/**
 * The services' part of the API: a service's status in GET /v1/jobs/:id (its replicas with their
 * URLs and readiness, for a router), and POST /v1/jobs/:id/scale to change its bounds. Both are
 * the service's tenant's (or an admin's) alone: another tenant gets the 404 it gets for any job
 * it does not own.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../api/errors.ts';
import type { Job, ServiceStatus } from '../../api/types.ts';
import { ScaleRequestSchema, answers, RESPONSES } from '../../api/apiSchemas.ts';
import { checkSchema } from '../../api/schemaCheck.ts';
import { checkHistory, HISTORY_BODY_LIMIT, ServiceHistoryRequestSchema } from '../../api/serviceHistory.ts';
import type { Store } from '../../store/store.ts';
import { requireRole, type Principal } from '../auth.ts';
import { jobIdParam, refuse } from '../query.ts';
import { replicaUrl } from './replicaSpec.ts';

/** Whether a job is a service (not one of its replicas). */
export const isService = (j: Job): boolean => j.kind === 'service' && (j.serviceId ?? null) === null && j.spec.service !== undefined;

/** A service's status: bounds, last decision and replicas (null when the store has no record of it). */
export async function serviceStatus(store: Store, job: Job): Promise<ServiceStatus | null> {
  const s = (await store.listServices([job.id]))[0];
  if (!s) return null;
  const replicas = await store.listReplicas([job.id]);
  const history = (await store.serviceHistorySummaries([job.id])).get(job.id) ?? null;
  return {
    minReplicas: s.minReplicas,
    maxReplicas: s.maxReplicas,
    desiredReplicas: s.desired,
    keepGpus: s.keepMilli / 1000,
    urgent: s.urgent,
    reason: s.reason,
    decidedAt: s.decidedAt,
    replicas: replicas.map((r) => ({
      id: r.job.id,
      state: r.job.state,
      attempt: r.job.attempt,
      node: r.node,
      url: replicaUrl(r.nodeAddress, r.job.spec, '/')?.slice(0, -1) ?? null,
      ready: r.ready,
      startedAt: r.startedAt,
    })),
    history: history ? { points: history.points, fromSeconds: history.fromSeconds, toSeconds: history.toSeconds, updatedAt: history.updatedAt } : null,
  };
}

export interface ServiceRouteOptions {
  readonly store: Store;
  readonly clock: () => number;
  readonly auth: (req: FastifyRequest) => Promise<Principal>;
  /** The job if the principal may see it, else a 404. */
  readonly visibleJob: (p: Principal, id: string) => Promise<Job>;
  readonly onChange: () => void;
  /** Seconds of the services' autoscaler clock per wall second (the server's --service-time-scale; 1 by default). */
  readonly timeScale?: number;
}

export function registerServiceRoutes(app: FastifyInstance, o: ServiceRouteOptions): void {
  /** The service a request names, for a tenant or admin who may see it: a 404 when hidden, a 409 when the job is no service. */
  const serviceOf = async (req: FastifyRequest): Promise<{ p: Principal; id: string; job: Job }> => {
    const p = await o.auth(req);
    requireRole(p, 'tenant', 'admin');
    const id = jobIdParam(req.params);
    const job = await o.visibleJob(p, id);
    if (!isService(job)) throw new ApiError('conflict', `job ${id} is not a service`);
    return { p, id, job };
  };

  app.post('/v1/jobs/:id/scale', {
    schema: {
      description: "Change a service's bounds: minReplicas and maxReplicas (either or both). Its autoscaler keeps its replicas between them; its desired count is clamped to them at once.",
      tags: ['jobs'],
      params: { type: 'object', properties: { id: { type: 'string' } } },
      body: ScaleRequestSchema,
      response: answers(200, RESPONSES.scale),
    },
  }, async (req) => {
    const { p, id, job } = await serviceOf(req);
    const body = req.body ?? {};
    refuse(checkSchema(ScaleRequestSchema, body));
    const b = body as { minReplicas?: number; maxReplicas?: number };
    const current = (await o.store.listServices([id]))[0];
    if (!current || job.state !== 'running') throw new ApiError('conflict', `service ${id} is ${job.state}`);
    const min = b.minReplicas ?? current.minReplicas;
    const max = b.maxReplicas ?? current.maxReplicas;
    if (min > max) refuse([{ path: b.maxReplicas !== undefined ? 'maxReplicas' : 'minReplicas', message: `minReplicas (${min}) must not be above maxReplicas (${max})` }]);
    const after = await o.store.setServiceBounds(id, min, max, p.name, o.clock());
    if (!after) throw new ApiError('conflict', `service ${id} is no longer running`);
    o.onChange();
    return { job: after.job, service: await serviceStatus(o.store, after.job) };
  });

  app.put('/v1/jobs/:id/history', {
    bodyLimit: HISTORY_BODY_LIMIT,
    schema: {
      description: "Import a service's request rate from before Tide ran it (a Prometheus export): its autoscaler learns from it as from its own observations. Replaces any earlier history; every point must be before the service's start. `tide scale ID --history FILE` sends a CSV t_seconds,value.",
      tags: ['jobs'],
      params: { type: 'object', properties: { id: { type: 'string' } } },
      body: ServiceHistoryRequestSchema,
      response: answers(200, RESPONSES.scale),
    },
  }, async (req) => {
    const { p, id, job } = await serviceOf(req);
    if (job.state !== 'running' || job.startedAt === null) throw new ApiError('conflict', `service ${id} is ${job.state}`);
    // The autoscaler's clock: Unix seconds, times the server's service time scale (a compressed replay).
    const start = (job.startedAt / 1000) * (o.timeScale ?? 1);
    refuse(checkHistory(req.body ?? null, start));
    const points = (req.body as { points: [number, number][] }).points;
    const summary = await o.store.putServiceHistory(id, points, p.name, o.clock());
    if (!summary) throw new ApiError('conflict', `service ${id} is no longer running`);
    o.onChange();
    return { job, service: await serviceStatus(o.store, job) };
  });
}
