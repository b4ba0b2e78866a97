/**
 * Routes the dashboard needs beyond the job API: who a token is (`GET /v1/session`) and a dry run
 * of a submission (`POST /v1/jobs/validate`), which checks a spec exactly as `POST /v1/jobs`
 * does (the spec's schema, the queue and whether any node could run it) and creates nothing, so
 * the submit form shows the API's own field errors beside its fields. Its verdict is the answer:
 * 200 `{ok: true, jobs, spec}` or 200 `{ok: false, error: {code, message, fields}}` with the error
 * POST /v1/jobs would give (a form checking as one types is not a failing request); a bad token or
 * query is still a 401, 403 or 400.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../api/errors.ts';
import { parseJobSpec, type JobSpec } from '../api/spec.ts';
import { JOB_SPEC_SCHEMA } from '../api/specSchema.ts';
import type { Store } from '../store/store.ts';
import { authenticate, queueOpenTo, requireRole, type Principal } from './auth.ts';
import { SubmissionCheck, unsatisfiableError } from './feasibility.ts';
import { QueryReader } from './query.ts';
import { answers, DASHBOARD_ANSWERS } from '../api/apiSchemas.ts';

export function registerDashboardRoutes(app: FastifyInstance, o: { store: Store; clock: () => number }): void {
  const { store, clock } = o;
  const check = new SubmissionCheck(store);

  app.get('/v1/session', { schema: { description: 'Who this token is: {role, tenant, name}', tags: ['access'], response: answers(200, DASHBOARD_ANSWERS.session) } }, async (req) => {
    const p = await authenticate(store, req.headers.authorization, clock());
    requireRole(p, 'tenant', 'admin');
    return { role: p.role, tenant: p.tenant ?? null, name: p.name };
  });

  app.post('/v1/jobs/validate', {
    schema: {
      description: 'Dry run of POST /v1/jobs: the same checks (spec, queue, capacity), nothing created. 200 {ok: true, jobs, spec}, or 200 {ok: false, error} with the error (code, message, fields) POST /v1/jobs would answer. Admins: ?tenant=NAME.',
      tags: ['jobs'],
      body: JOB_SPEC_SCHEMA,
      querystring: { type: 'object', properties: { tenant: { type: 'string' } } },
      response: answers(200, DASHBOARD_ANSWERS.validation),
    },
  }, async (req) => {
    const p = await authenticate(store, req.headers.authorization, clock());
    requireRole(p, 'tenant', 'admin');
    try {
      return await dryRun(p, req.query, req.body);
    } catch (e) {
      if (!(e instanceof ApiError) || !['invalid_spec', 'unsatisfiable'].includes(e.code)) throw e;
      return { ok: false, error: { code: e.code, message: e.message, ...(e.fields ? { fields: e.fields } : {}) } };
    }
  });

  /** The checks of POST /v1/jobs, in its order, without the submission. */
  const dryRun = async (p: Principal, query: unknown, input: unknown): Promise<{ ok: true; jobs: number; spec: JobSpec }> => {
    const q = new QueryReader(query);
    const named = q.string('tenant');
    q.done();
    const tenantNames = await store.listTenants();
    let tenant = p.tenant ?? 'default';
    if (p.role === 'tenant' && named !== undefined && named !== p.tenant) throw new ApiError('forbidden', 'tenant: a tenant token reads its own tenant only');
    if (p.role === 'admin' && named !== undefined) {
      if (!tenantNames.includes(named)) throw new ApiError('not_found', `no tenant ${named}`);
      tenant = named;
    }
    const parsed = parseJobSpec(input);
    if (!parsed.ok) throw new ApiError('invalid_spec', `invalid job spec: ${parsed.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, parsed.errors);
    const queues = await store.listQueues();
    const queue = queues.find((x) => x.name === parsed.spec.queue);
    const open = queues.filter((x) => queueOpenTo(x, tenant, tenantNames)).map((x) => x.name);
    if (!queue || !queueOpenTo(queue, tenant, tenantNames)) {
      // An unknown queue and another tenant's read alike (not even the name is echoed): the answer
      // names only the caller's own queues.
      throw new ApiError('invalid_spec', 'invalid job spec: queue: no queue of that name is open to you', [{ path: 'queue', message: `no queue of that name is open to you (yours: ${open.join(', ') || 'none'})` }]);
    }
    const problem = await check.problem(parsed.spec);
    if (problem) throw unsatisfiableError(problem);
    return { ok: true, jobs: parsed.spec.array, spec: parsed.spec };
  };
}
