/**
 * The HTTP API (JSON under /v1, YAML accepted for job specs), /openapi.json, /healthz and
 * /metrics. Handlers authenticate, validate and call the store; every error leaves through one
 * handler that maps it to a status and an error code from api/errors.ts.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import { ApiError, ERROR_CODES } from '../api/errors.ts';
import { JOB_KINDS, parseJobSpec } from '../api/spec.ts';
import { describeJsonError, duplicateKeyMessage, findDuplicateKey, hasDuplicateKey, parseYamlStrict } from '../api/strictParse.ts';
import { ACTIVE_TASK_STATES, JOB_STATES, TERMINAL_JOB_STATES, type QueueInfo } from '../api/types.ts';
import { describeCounts, parseIndexRanges } from '../api/arrayWords.ts';
import type { Store } from '../store/store.ts';
import { openJobsById } from '../store/openJobIndex.ts';
import { boundedBody } from './agentLink.ts';
import { authenticate, hashToken, newToken, queueOpenTo, queueTenants, requireRole, type Principal } from './auth.ts';
import { registerAgentRoutes } from './agentRoutes.ts';
import { NodeWakeups } from './nodeWakeups.ts';
import { expiryOf, registerTokenRoutes } from './tokenRoutes.ts';
import type { Metrics } from './metrics.ts';
import { queueQuotaFields } from './config.ts';
import { jobIdParam, MAX_PAGE, nameParam, page, QueryReader, queryProblems, refuse } from './query.ts';
import { JOB_SPEC_SCHEMA } from '../api/specSchema.ts';
import { answers, ArrayCancelRequestSchema, ErrorSchema, QueueRequestSchema, RESPONSES, TenantRequestSchema } from '../api/apiSchemas.ts';
import { checkSchema } from '../api/schemaCheck.ts';
import { SubmissionCheck, unsatisfiableError } from './feasibility.ts';
import { registerDashboardRoutes } from './dashboardRoutes.ts';
import { registerLiveRoutes } from './liveEvents.ts';
import { registerWebRoutes } from './webRoutes.ts';
import { COMPRESS_MIN_BYTES, gzipKept, registerCompression } from './compression.ts';
import { registerWhatIfRoutes } from './whatIf.ts';
import { DEFAULT_IDLE_CONFIG, type IdleConfig } from './idle/idleConfig.ts';
import { jobIdle, registerIdleRoutes } from './idle/idleRoutes.ts';
import { isService, registerServiceRoutes, serviceStatus } from './services/routes.ts';
import { queueLoans } from './services/loans.ts';
import { registerUsageRoutes } from './usage/routes.ts';
import { DEFAULT_PRICES, type EnergyPrices } from '../core/energy/pricing.ts';
import { DEFAULT_MAX_SUBMIT_JOBS, SubmitLimits } from './submitLimits.ts';

/** The most a log read takes from an agent: its chunk (1 MiB) and room for multi-byte characters. */
const MAX_AGENT_ANSWER = 4 * 1024 * 1024 + 1024;

export interface AppOptions {
  readonly store: Store;
  readonly metrics: Metrics;
  readonly clock: () => number;
  readonly serverId: string;
  readonly isLeader: () => boolean;
  /** Called after a submission so the loop schedules it without waiting for the next tick. */
  readonly onSubmit: () => void;
  readonly bodyLimit?: number;
  /** The credential the server reads a node's logs from its agent with (agentLink.ts agentLogKey). */
  readonly agentLogKey: (node: string) => string;
  readonly logger?: boolean;
  /** A node silent this long is lost; agents learn it from register and heartbeat answers to fence themselves. */
  readonly nodeLeaseMs?: number;
  /** The cluster config's idle section with its defaults (idle/idleConfig.ts). */
  readonly idle?: IdleConfig;
  /** Seconds of the services' autoscaler clock per wall second (--service-time-scale; default 1): a history's times are on it. */
  readonly serviceTimeScale?: number;
  /** Tariff, carbon, PUE and GPU-hour prices for usage records and reports (default: core/energy/pricing.ts). */
  readonly prices?: EnergyPrices;
  /** Agents' waits for new work (nodeWakeups.ts), shared with the loop that binds; default: this app's own. */
  readonly wakeups?: NodeWakeups;
  /** Each tenant's open-job limit (submitLimits.ts; config maxSubmitJobs); default DEFAULT_MAX_SUBMIT_JOBS for all. */
  readonly maxSubmitJobs?: (tenant: string) => number;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const { store, clock } = o;
  // A client that trickles its request (slowloris) is cut off rather than holding a socket for ever.
  const app = Fastify({ logger: o.logger ?? false, bodyLimit: o.bodyLimit ?? 1024 * 1024, requestTimeout: 60_000 });
  // The route schemas are the TypeBox schemas of api/ (specSchema.ts, agentSchema.ts,
  // apiSchemas.ts), published in /openapi.json. Handlers validate with those same schemas through
  // api/schemaCheck.ts (Ajv, compiled once) plus their named checks, so that every error names
  // its field and the code an API error has; Fastify's own validation and response
  // serialisation are off (answers are sent as they are, never trimmed to the schema).
  app.setValidatorCompiler(() => (data) => ({ value: data }));
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  await app.register(swagger, {
    openapi: {
      info: { title: 'Tide API', version: '1', description: 'GPU compute scheduler control plane. Authenticate with `Authorization: Bearer <token>`.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  // Only JSON and YAML bodies: anything else is a 415, not a string that fails validation.
  // JSON goes through Fastify's own parser (which refuses __proto__), then a scan that refuses
  // a duplicate key as YAML does; a YAML error is one line with its position.
  app.removeContentTypeParser('text/plain');
  const parseJson = app.getDefaultJsonParser('error', 'ignore');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    parseJson(req, body as string, (err: Error | null, value?: unknown) => {
      if ((err as { code?: string } | null)?.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return done(new ApiError('invalid_request', `body is not valid JSON: ${describeJsonError(body as string)}`), undefined);
      if (err) return done(err, undefined);
      const dup = typeof value === 'object' && value !== null && hasDuplicateKey(body as string, value) ? findDuplicateKey(body as string) : null;
      if (dup) {
        const message = duplicateKeyMessage(dup);
        return done(new ApiError('invalid_request', `body is not valid JSON: ${message}`, [{ path: `${dup.at}${dup.at ? '.' : ''}${dup.key}`, message: 'duplicate key' }]), undefined);
      }
      done(null, value);
    });
  });
  for (const type of ['application/yaml', 'application/x-yaml', 'text/yaml']) {
    app.addContentTypeParser(type, { parseAs: 'string' }, (_req, body, done) => {
      try {
        done(null, parseYamlStrict(body as string));
      } catch (e) {
        done(new ApiError('invalid_request', `body is not valid YAML: ${(e as Error).message}`), undefined);
      }
    });
  }

  app.setErrorHandler((error: unknown, req, reply) => {
    const body = toErrorBody(error);
    if (body.status >= 500) req.log.error(error);
    if (body.status === 500 && !o.logger) console.error(error);
    void reply.status(body.status).send({ error: body.error });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });

  // Every answer's time from the request's arrival (Fastify's elapsedTime), by route pattern:
  // unmatched URLs share one label, so a scan of random paths cannot grow the series.
  app.addHook('onResponse', async (req, reply) => {
    o.metrics.requestSeconds.observe({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  // Every query string is checked against the keys its route declares (its schema's
  // querystring, which /openapi.json shows): an unknown or repeated key is a 400.
  app.addHook('onRequest', async (req) => {
    if (req.routeOptions.url === undefined) return;
    const declared = Object.keys((req.routeOptions.schema?.querystring as { properties?: object } | undefined)?.properties ?? {});
    refuse(queryProblems(req.query, declared));
  });

  const auth = (req: FastifyRequest): Promise<Principal> => authenticate(store, req.headers.authorization, clock());
  registerTokenRoutes(app, { store, clock });
  registerCompression(app);
  registerWebRoutes(app);
  registerDashboardRoutes(app, { store, clock });
  registerLiveRoutes(app, { store, clock });
  registerWhatIfRoutes(app, { store, clock });
  registerIdleRoutes(app, { store, clock, config: o.idle ?? DEFAULT_IDLE_CONFIG });
  const submissionCheck = new SubmissionCheck(store);
  const submitLimits = new SubmitLimits(store, o.maxSubmitJobs ?? (() => DEFAULT_MAX_SUBMIT_JOBS));
  const wakeups = o.wakeups ?? new NodeWakeups();
  // Held waits are answered before the server stops listening, so a close does not wait out their timeouts.
  app.addHook('preClose', async () => wakeups.close());
  /** Tells the agents running a job's tasks to heartbeat now (a cancel or preemption stops them). */
  const wakeJobNodes = async (id: string): Promise<void> => wakeups.wake((await store.listTasks(id)).flatMap((t) => (t.node !== null && ACTIVE_TASK_STATES.includes(t.state) ? [t.node] : [])));
  registerAgentRoutes(app, { store, clock, serverId: o.serverId, nodeLeaseMs: o.nodeLeaseMs ?? 15_000, onReports: o.onSubmit, logKey: o.agentLogKey, prices: o.prices ?? DEFAULT_PRICES, wakeups });
  registerUsageRoutes(app, { store, clock, prices: o.prices ?? DEFAULT_PRICES, onBudget: o.onSubmit });
  const visibleJob = async (p: Principal, id: string) => {
    const job = await store.getJob(id);
    if (!job || (p.role === 'tenant' && job.tenant !== p.tenant)) throw new ApiError('not_found', `no job ${id}`);
    return job;
  };

  /** The paging part of a list's query: after, before, limit, order. */
  const listQuery = (q: QueryReader): { afterId?: number; beforeId?: number; limit: number; order: 'asc' | 'desc' } => {
    const after = q.id('after', 'an id (a cursor from next)');
    const before = q.id('before', 'an id (a cursor from next)');
    const limit = q.int('limit', 1, MAX_PAGE) ?? MAX_PAGE;
    const order = q.oneOf('order', ['asc', 'desc'] as const) ?? 'asc';
    return { ...(after !== undefined ? { afterId: after } : {}), ...(before !== undefined ? { beforeId: before } : {}), limit, order };
  };
  /**
   * Whose rows a list shows: a tenant its own (naming another is a 403); an admin all, or
   * ?tenant=NAME (which must exist). Reads the last parameter: first refuses any bad one.
   */
  const tenantFilter = async (p: Principal, q: QueryReader): Promise<string | undefined> => {
    const named = q.string('tenant');
    q.done();
    if (p.role === 'tenant') {
      if (named !== undefined && named !== p.tenant) throw new ApiError('forbidden', 'tenant: a tenant token reads its own tenant only');
      return p.tenant ?? '';
    }
    if (named !== undefined && !(await store.listTenants()).includes(named)) throw new ApiError('not_found', `no tenant ${named}`);
    return named;
  };

  app.get('/healthz', { schema: { description: 'Liveness and role of this server', security: [] } }, async () => {
    await store.listTenants();
    return { ok: true, serverId: o.serverId, leader: o.isLeader(), database: store.dialect };
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.get('/metrics', { schema: { description: 'Prometheus metrics', security: [] } }, async (_req, reply) => {
    o.metrics.leader.set(o.isLeader() ? 1 : 0);
    void reply.header('content-type', o.metrics.registry.contentType);
    return o.metrics.registry.metrics();
  });

  app.post('/v1/jobs', {
    schema: {
      description: 'Submit a job (JSON or YAML). Idempotent with an Idempotency-Key header or a clientKey field. Admins submit for ?tenant=NAME.',
      tags: ['jobs'],
      body: JOB_SPEC_SCHEMA,
      headers: { type: 'object', properties: { 'idempotency-key': { type: 'string' } } },
      querystring: { type: 'object', properties: { tenant: { type: 'string' } } },
      response: { 200: RESPONSES.submit, 201: RESPONSES.submit, '4xx': ErrorSchema, '5xx': ErrorSchema },
    },
  }, async (req, reply) => {
    const p = await auth(req);
    requireRole(p, 'tenant', 'admin');
    const q = new QueryReader(req.query);
    const tenant = (await tenantFilter(p, q)) ?? 'default';
    const parsed = parseJobSpec(req.body);
    if (!parsed.ok) throw new ApiError('invalid_spec', `invalid job spec: ${parsed.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, parsed.errors);
    const queues = await store.listQueues();
    const queue = queues.find((x) => x.name === parsed.spec.queue);
    // Only the default queue and queues with an explicit list avoid reading the tenants.
    const tenantNames = queue && (queue.tenants !== undefined || queue.name === 'default') ? [] : await store.listTenants();
    if (!queue) {
      const open = queues.filter((x) => queueOpenTo(x, tenant, tenantNames)).map((x) => x.name);
      throw new ApiError('invalid_spec', `invalid job spec: queue: unknown queue "${parsed.spec.queue}"`, [
        { path: 'queue', message: `unknown queue "${parsed.spec.queue}" (yours: ${open.join(', ') || 'none'})` },
      ]);
    }
    if (!queueOpenTo(queue, tenant, tenantNames)) throw new ApiError('forbidden', `queue "${queue.name}" is not open to tenant ${tenant}`, [{ path: 'queue', message: `not open to tenant ${tenant}` }]);
    const problem = await submissionCheck.problem(parsed.spec);
    await submitLimits.refresh(tenant);
    const key = idempotencyKey(req.headers['idempotency-key'], parsed.clientKey);
    // A retry of an accepted submission gets its jobs back even if the cluster has shrunk since, or the tenant reached its limit.
    const result = await store.submit(tenant, parsed.spec, key, clock(), () => {
      if (problem) throw unsatisfiableError(problem);
      submitLimits.admit(tenant, parsed.spec.array);
    });
    const arrayId = result.jobs[0]?.arrayId ?? null;
    if (result.conflict) {
      const earlier = arrayId !== null ? `array ${arrayId}` : `job ${result.jobs.map((j) => j.id).join(', ')}`;
      throw new ApiError('idempotency_conflict', `idempotency key "${key ?? ''}" was used for a different job spec (${earlier}): use a new key`, [
        { path: 'clientKey', message: 'already used for a different job spec' },
      ]);
    }
    if (result.created) {
      o.metrics.submissions.inc(result.jobs.length);
      o.onSubmit();
    }
    void reply.status(result.created ? 201 : 200);
    // An array is answered as one (Slurm's "Submitted batch job N"): its elements were 0.7 KB each,
    // 7 MB for 10,000 built, sent and parsed (GET /v1/jobs?array=ID pages them).
    const array = arrayId !== null ? await store.getArray(arrayId) : null;
    return array ? { created: result.created, jobs: [], array } : { created: result.created, jobs: result.jobs };
  });

  const visibleArray = async (p: Principal, id: string) => {
    const array = await store.getArray(id);
    if (!array || (p.role === 'tenant' && array.tenant !== p.tenant)) throw new ApiError('not_found', `no array ${id}`);
    return array;
  };

  app.get('/v1/arrays/:id', { schema: { description: 'A batch array: its size and its elements counted by state (the elements themselves: GET /v1/jobs?array={id})', tags: ['jobs'], params: { type: 'object', properties: { id: { type: 'string' } } }, response: answers(200, RESPONSES.array) } }, async (req) => {
    const p = await auth(req);
    requireRole(p, 'tenant', 'admin');
    return { array: await visibleArray(p, jobIdParam(req.params, 'an array id')) };
  });

  app.get('/v1/arrays/:id/elements/:index', { schema: { description: "A batch array's element by its index (Slurm's 123_5): the element's job (its page: GET /v1/jobs/{job.id})", tags: ['jobs'], params: { type: 'object', properties: { id: { type: 'string' }, index: { type: 'string' } } }, response: answers(200, RESPONSES.jobChange) } }, async (req) => {
    const p = await auth(req);
    requireRole(p, 'tenant', 'admin');
    const id = jobIdParam(req.params, 'an array id');
    const array = await visibleArray(p, id);
    const raw = (req.params as { index?: unknown }).index;
    const index = typeof raw === 'string' && /^\d{1,5}$/.test(raw) ? Number(raw) : -1;
    if (index < 0 || index >= array.size) refuse([{ path: 'index', message: `must be an element index from 0 to ${array.size - 1}, got ${JSON.stringify(String(raw ?? '').slice(0, 20))}` }]);
    const job = await store.getArrayElement(id, index);
    if (!job) throw new ApiError('not_found', `no element ${index} in array ${id}`);
    return { job };
  });

  app.post('/v1/arrays/:id/cancel', { schema: { description: "Cancel a batch array: every element not finished yet is cancelled (its tasks stopped as a job's cancel stops them), or with elements (\"0-9,12\") those of them, as Slurm's scancel 123_[0-9,12]", tags: ['jobs'], params: { type: 'object', properties: { id: { type: 'string' } } }, body: ArrayCancelRequestSchema, response: answers(200, RESPONSES.arrayCancel) } }, async (req) => {
    const p = await auth(req);
    requireRole(p, 'tenant', 'admin');
    const id = jobIdParam(req.params, 'an array id');
    const before = await visibleArray(p, id);
    const body = (req.body ?? {}) as { elements?: string };
    refuse(checkSchema(ArrayCancelRequestSchema, body));
    let only: Set<number> | undefined;
    if (body.elements !== undefined) {
      const chosen = parseIndexRanges(body.elements, before.size);
      if (typeof chosen === 'string') refuse([{ path: 'elements', message: chosen }]);
      else only = chosen;
    }
    if (before.unfinished === 0) throw new ApiError('conflict', `array ${id} has no unfinished element (${describeCounts(before.counts)})`);
    const done = await store.cancelArray(id, p.name, clock(), only);
    if (done) wakeups.wake(done.nodes);
    if (done?.cancelled) o.onSubmit();
    return { array: await visibleArray(p, id), cancelled: done?.cancelled ?? 0 };
  });

  app.get('/v1/jobs', {
    schema: {
      description: `List jobs (a tenant sees its own), one page at a time: {jobs, next}. next is the cursor for the next page (pass it as after, or as before with order=desc), null at the end. Filters: state (comma list of ${JOB_STATES.join(', ')}), queue, kind (${JOB_KINDS.join(', ')}), array (an array's elements), after/before (job ids), limit (1-${MAX_PAGE}, default ${MAX_PAGE}), order (asc: oldest first, the default; desc: newest first); admins: tenant.`,
      tags: ['jobs'],
      querystring: { type: 'object', properties: { state: { type: 'string' }, queue: { type: 'string' }, kind: { type: 'string' }, array: { type: 'string' }, after: { type: 'string' }, before: { type: 'string' }, limit: { type: 'string' }, order: { type: 'string', enum: ['asc', 'desc'] }, tenant: { type: 'string' } } },
      response: answers(200, RESPONSES.jobs),
    },
  }, async (req) => {
    const p = await auth(req);
    requireRole(p, 'tenant', 'admin');
    const q = new QueryReader(req.query);
    const states = q.listOf('state', JOB_STATES);
    const queue = q.string('queue');
    const kind = q.oneOf('kind', JOB_KINDS);
    const arrayId = q.id('array', 'an array id');
    const list = listQuery(q);
    const tenant = await tenantFilter(p, q);
    if (queue !== undefined && !(await store.listQueues()).some((x) => x.name === queue)) throw new ApiError('not_found', `no queue ${JSON.stringify(queue.slice(0, 64))}`);
    const rows = await store.listJobs({
      ...(tenant !== undefined ? { tenant } : {}),
      ...(states ? { states } : {}),
      ...(queue !== undefined ? { queue } : {}),
      ...(kind !== undefined ? { kind } : {}),
      ...(arrayId !== undefined ? { arrayId: String(arrayId) } : {}),
      ...list,
      limit: list.limit + 1,
    });
    const { items, next } = page(rows, list.limit, (j) => j.id);
    return { jobs: items, next };
  });

  app.get('/v1/jobs/:id', { schema: { description: 'A job with its tasks (placement), events, attempts (every run of every task, earlier attempts included: node, GPUs, start, finish, exit code, end reason) and idle: its GPUs idle past the threshold (docs/idle.md), or null', tags: ['jobs'], params: { type: 'object', properties: { id: { type: 'string' } } }, response: answers(200, RESPONSES.job) } }, async (req) => {
    const p = await auth(req);
    requireRole(p, 'tenant', 'admin');
    const id = jobIdParam(req.params);
    const job = await visibleJob(p, id);
    // Side by side: on PostgreSQL each is a round trip through the read pool (one after another,
    // four of them set the tail of this read under load).
    const [tasks, events, attempts, service] = await Promise.all([store.listTasks(id), store.listEvents({ jobId: id }), store.listAttempts(id), isService(job) ? serviceStatus(store, job) : null]);
    return { job, tasks, events, attempts, idle: await jobIdle(store, job, tasks, o.idle ?? DEFAULT_IDLE_CONFIG), ...(service ? { service } : {}) };
  });
  registerServiceRoutes(app, { store, clock, auth, visibleJob, onChange: o.onSubmit, ...(o.serviceTimeScale !== undefined ? { timeScale: o.serviceTimeScale } : {}) });

  app.post('/v1/jobs/:id/cancel', { schema: { description: 'Cancel a job: stop its tasks (SIGTERM, then SIGKILL after the grace period)', tags: ['jobs'], response: answers(200, RESPONSES.jobChange) } }, async (req) => {
    const p = await auth(req);
    requireRole(p, 'tenant', 'admin');
    const id = jobIdParam(req.params);
    const job = await visibleJob(p, id);
    const after = await store.cancel(id, p.name, clock());
    if (!after) throw new ApiError('conflict', `job ${id} is already ${job.state}`);
    await wakeJobNodes(id);
    o.onSubmit();
    return { job: after };
  });

  app.post('/v1/jobs/:id/preempt', { schema: { description: 'Admin: stop a running job and requeue it (it resumes from its checkpoint)', tags: ['jobs'], response: answers(200, RESPONSES.jobChange) } }, async (req) => {
    const p = await auth(req);
    requireRole(p, 'admin');
    const id = jobIdParam(req.params);
    const job = await visibleJob(p, id);
    const after = await store.preempt(id, `preempted by ${p.name}`, clock());
    if (!after) throw new ApiError('conflict', `job ${id} is ${job.state}, not running`);
    await wakeJobNodes(id);
    return { job: after };
  });

  app.get('/v1/jobs/:id/logs', {
    schema: {
      description: "A task's output, read from its agent. stream: stdout|stderr; offset: byte offset to read from. The X-Tide-Next-Offset header tells where to continue.",
      tags: ['jobs'],
      querystring: { type: 'object', properties: { task: { type: 'string' }, stream: { type: 'string' }, offset: { type: 'string' } } },
      response: { 200: { type: 'string', description: 'the bytes from offset' }, '4xx': ErrorSchema, '5xx': ErrorSchema },
    },
  }, async (req, reply) => {
    const p = await auth(req);
    requireRole(p, 'tenant', 'admin');
    const id = jobIdParam(req.params);
    const job = await visibleJob(p, id);
    const q = new QueryReader(req.query);
    const index = q.int('task', 0, job.tasks - 1) ?? 0;
    const stream = q.oneOf('stream', ['stdout', 'stderr'] as const) ?? 'stdout';
    const offset = q.int('offset', 0, Number.MAX_SAFE_INTEGER) ?? 0;
    q.done();
    const task = (await store.listTasks(id)).find((t) => t.index === index);
    const node = task?.node ? await store.getNode(task.node) : null;
    const done = TERMINAL_JOB_STATES.includes(job.state);
    void reply.header('x-tide-job-state', job.state);
    if (!node) {
      void reply.header('x-tide-next-offset', String(offset)).type('text/plain');
      return '';
    }
    let res: Response;
    let body: Buffer;
    try {
      res = await fetch(`${node.address}/logs/${id}/${index}?stream=${stream}&offset=${offset}`, {
        headers: { authorization: `Bearer ${o.agentLogKey(node.id)}` },
        signal: AbortSignal.timeout(5000),
        redirect: 'manual',
      });
      body = await boundedBody(res, MAX_AGENT_ANSWER);
    } catch (e) {
      throw new ApiError('unavailable', `the agent of node ${node.id} (${node.address}) does not answer properly: ${(e as Error).message}`);
    }
    if (!res.ok) throw new ApiError('unavailable', `agent ${node.id}: ${res.status} ${body.subarray(0, 200).toString()}`);
    void reply.header('x-tide-next-offset', res.headers.get('x-tide-next-offset') ?? String(offset)).header('x-tide-finished', String(done)).type('text/plain; charset=utf-8');
    return body;
  });

  app.get('/v1/events', {
    schema: {
      description: `The audit log (a tenant sees the events of its jobs), one page at a time: {events, next}. next is the cursor for the next page (pass it as after, or as before with order=desc), null at the end. Filters: job (id), after/before (event ids), limit (1-${MAX_PAGE}, default ${MAX_PAGE}), order (asc: oldest first, the default; desc: newest first); admins: tenant.`,
      tags: ['events'],
      querystring: { type: 'object', properties: { job: { type: 'string' }, after: { type: 'string' }, before: { type: 'string' }, limit: { type: 'string' }, order: { type: 'string', enum: ['asc', 'desc'] }, tenant: { type: 'string' } } },
      response: answers(200, RESPONSES.events),
    },
  }, async (req) => {
    const p = await auth(req);
    requireRole(p, 'tenant', 'admin');
    const q = new QueryReader(req.query);
    const job = q.id('job', 'a job id');
    const list = listQuery(q);
    const tenant = await tenantFilter(p, q);
    if (job !== undefined) await visibleJob(p, String(job));
    const rows = await store.listEvents({
      ...(job !== undefined ? { jobId: String(job) } : {}),
      ...(tenant !== undefined ? { tenant } : {}),
      ...list,
      limit: list.limit + 1,
    });
    const { items, next } = page(rows, list.limit, (e) => e.id);
    return { events: items, next };
  });

  // The store answers the same node list while nothing but heartbeats changed (up to 3 s,
  // store.listNodes): it is serialised once (1.5 MB for 1,250 nodes), into a Buffer, which the
  // compression hook gzips once too (compression.ts). A new list keeps the objects of the nodes
  // that did not change, and each node object is serialised once. A list read in the background
  // is serialised and compressed as soon as it is read, not in the turn of the reader after.
  const nodesText = new WeakMap<object, Buffer>();
  const nodeText = new WeakMap<object, string>();
  const serialised = (n: object): string => {
    let text = nodeText.get(n);
    if (text === undefined) nodeText.set(n, (text = JSON.stringify(n)));
    return text;
  };
  const nodesBody = (nodes: readonly object[]): Buffer => {
    let body = nodesText.get(nodes);
    if (body === undefined) nodesText.set(nodes, (body = Buffer.from(`{"nodes":[${nodes.map(serialised).join(',')}]}`)));
    return body;
  };
  store.observeNodeLists((nodes) => {
    const body = nodesBody(nodes);
    if (body.length >= COMPRESS_MIN_BYTES) gzipKept(body).catch(() => undefined);
  });
  app.get('/v1/nodes', { schema: { description: 'Nodes with their GPUs, use and telemetry (a node\'s telemetry and last heartbeat may be up to 3 s old)', tags: ['cluster'], response: answers(200, RESPONSES.nodes) } }, async (req, reply) => {
    const p = await auth(req);
    requireRole(p, 'tenant', 'admin');
    const nodes = await store.listNodes();
    void reply.type('application/json; charset=utf-8');
    return nodesBody(nodes);
  });

  for (const [verb, drained] of [['drain', true], ['undrain', false]] as const) {
    app.post(`/v1/nodes/:id/${verb}`, { schema: { description: drained ? 'Admin: place nothing new on a node (running tasks stay)' : 'Admin: let a drained node take tasks again', tags: ['cluster'], response: answers(200, RESPONSES.node) } }, async (req) => {
      const p = await auth(req);
      requireRole(p, 'admin');
      const id = nameParam(req.params, 'id', 'a node name');
      if (!(await store.setNodeDrained(id, drained, clock()))) throw new ApiError('not_found', `no ready or drained node ${id}`);
      o.onSubmit();
      return { node: await store.getNode(id) };
    });
  }

  app.get('/v1/queues', { schema: { description: 'Queues with quota, use, pending counts and the tenants each is open to (null: shared by all). A tenant sees only the queues it may submit to.', tags: ['cluster'], response: answers(200, RESPONSES.queues) } }, async (req) => {
    const p = await auth(req);
    requireRole(p, 'tenant', 'admin');
    const snap = await store.snapshot();
    const [configs, tenantNames] = await Promise.all([store.listQueues(), store.listTenants()]);
    const visible = p.role === 'admin' ? configs : configs.filter((q) => queueOpenTo(q, p.tenant ?? '', tenantNames));
    const byJob = openJobsById(snap.openJobs);
    const modelOf = new Map(snap.nodes.map((n) => [n.id, n.gpus]));
    const loans = queueLoans(snap);
    const queues: QueueInfo[] = visible.map((q) => {
      const jobs = snap.openJobs.filter((j) => j.queue === q.name);
      const held = snap.activeTasks.filter((t) => byJob.get(t.jobId)?.queue === q.name);
      const used = held.reduce((n, t) => n + t.gpuMilli, 0);
      const byModel: Record<string, number> = {};
      for (const t of held) for (const g of t.gpus) {
        const model = modelOf.get(t.node)?.find((x) => x.index === g)?.model ?? '?';
        byModel[model] = (byModel[model] ?? 0) + t.gpuMilli / t.gpus.length;
      }
      const tenants = queueTenants(q, tenantNames);
      return {
        name: q.name,
        gpuQuota: q.gpuQuota,
        borrowingLimit: q.borrowingLimit,
        cohort: q.cohort ?? 'cluster',
        nominalQuota: q.nominalQuota ?? null,
        borrowingLimits: q.borrowingLimits ?? null,
        lendingLimits: q.lendingLimits ?? null,
        usedGpuMilliByModel: byModel,
        // A tenant learns whether a queue is shared or its own, never who else it is open to.
        tenants: tenants === null ? null : p.role === 'admin' ? tenants : [p.tenant ?? ''],
        pending: jobs.filter((j) => j.state === 'pending').length,
        running: jobs.filter((j) => j.state === 'running' || j.state === 'admitted').length,
        usedGpuMilli: used,
        lentGpus: loans.get(q.name)?.lent ?? 0,
        borrowedGpus: loans.get(q.name)?.borrowed ?? 0,
      };
    });
    return { queues };
  });

  app.put('/v1/queues/:name', {
    schema: {
      description: 'Admin: create or replace a queue. tenants: the tenants it is open to; absent or null: a queue named like a tenant (other than default) is that tenant\'s alone, any other is shared by all.',
      tags: ['cluster'],
      body: QueueRequestSchema,
      response: answers(200, RESPONSES.queue),
    },
  }, async (req) => {
    const p = await auth(req);
    requireRole(p, 'admin');
    const name = nameParam(req.params, 'name', 'a queue name');
    const b = req.body ?? {};
    const problems = checkSchema(QueueRequestSchema, b);
    const quotaErrors: string[] = [];
    const quotas = queueQuotaFields(isObj(b) ? b : {}, '', quotaErrors);
    // The schema names shapes; the quota reader adds what it cannot (nominalQuota and gpuQuota both given).
    const named = new Set(problems.map((x) => x.path));
    for (const e of quotaErrors) {
      const at = e.indexOf(': ');
      if (!named.has(e.slice(0, at))) problems.push({ path: e.slice(0, at), message: e.slice(at + 2) });
    }
    const tIn = isObj(b) ? b['tenants'] : undefined;
    let tenants: string[] | undefined;
    if (tIn !== undefined && tIn !== null) {
      if (Array.isArray(tIn)) {
        const known = await store.listTenants();
        tIn.forEach((t: unknown, i) => {
          if (typeof t === 'string' && !known.includes(t)) problems.push({ path: `tenants[${i}]`, message: `no tenant ${JSON.stringify(t.slice(0, 64))}` });
        });
        tenants = [...new Set(tIn.filter((t): t is string => typeof t === 'string'))];
      }
    }
    const queue = { name, ...quotas, ...(tenants !== undefined ? { tenants } : {}) };
    if (problems.length) throw new ApiError('invalid_request', problems.map((x) => `${x.path}: ${x.message}`).join('; '), problems);
    await store.putQueue(queue, clock());
    return { queue: { ...queue, tenants: queueTenants(queue, await store.listTenants()) } };
  });

  app.post('/v1/tenants', {
    schema: { description: 'Admin: create a tenant (idempotent) and issue it a new API token (expiresInDays: absent or null for one that never expires)', tags: ['access'], body: TenantRequestSchema, response: answers(201, RESPONSES.tenant) },
  }, async (req, reply) => {
    const p = await auth(req);
    requireRole(p, 'admin');
    const problems = checkSchema(TenantRequestSchema, req.body ?? {});
    const name = isObj(req.body) ? req.body['name'] : undefined;
    const expiresAt = isObj(req.body) && problems.length === 0 ? expiryOf(req.body, clock(), problems) : null;
    refuse(problems);
    await store.ensureTenant(name as string, clock());
    const token = newToken(`tide_${name as string}`);
    await store.putToken(hashToken(token), { role: 'tenant', tenant: name as string }, clock(), expiresAt);
    void reply.status(201);
    return { tenant: name, token, id: hashToken(token).slice(0, 12), expiresAt };
  });

  app.get('/v1/tenants', { schema: { description: 'Admin: list tenants', tags: ['access'], response: answers(200, RESPONSES.tenants) } }, async (req) => {
    const p = await auth(req);
    requireRole(p, 'admin');
    return { tenants: await store.listTenants() };
  });

  return app;
}

/** The submission's idempotency key: the Idempotency-Key header or the spec's clientKey (both: they must agree). */
function idempotencyKey(header: unknown, clientKey: string | null): string | null {
  if (header === undefined) return clientKey;
  if (typeof header !== 'string' || header.length === 0 || header.length > 200) {
    throw new ApiError('invalid_request', 'Idempotency-Key: must be one header of 1-200 characters', [{ path: 'Idempotency-Key', message: 'must be one header of 1-200 characters' }]);
  }
  if (clientKey !== null && clientKey !== header) {
    throw new ApiError('invalid_request', 'Idempotency-Key: differs from the spec\'s clientKey (send one, or the same in both)', [{ path: 'clientKey', message: 'differs from the Idempotency-Key header' }]);
  }
  return header;
}

/** Maps any error to a status and an API error body: the one place that decides. */
export function toErrorBody(error: unknown): { status: number; error: { code: string; message: string; fields?: readonly { path: string; message: string }[] } } {
  if (error instanceof ApiError) return { status: error.status, error: { code: error.code, message: error.message, ...(error.fields ? { fields: error.fields } : {}) } };
  const e = error as { code?: string; statusCode?: number; message?: string };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, error: { code: 'payload_too_large', message: e.message ?? 'body too large' } };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, error: { code: 'unsupported_media_type', message: 'send application/json or application/yaml' } };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, error: { code: 'invalid_request', message: e.message ?? 'bad body' } };
    case 'ECONNREFUSED':
    case '57P01':
    case 'ETIMEDOUT':
      return { status: 503, error: { code: 'unavailable', message: 'database unavailable' } };
  }
  if (e.statusCode === 400 || error instanceof SyntaxError) return { status: 400, error: { code: 'invalid_request', message: `malformed body: ${e.message ?? ''}` } };
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) return { status: e.statusCode, error: { code: 'invalid_request', message: e.message ?? 'bad request' } };
  return { status: ERROR_CODES.internal.status, error: { code: 'internal', message: 'internal error' } };
}
