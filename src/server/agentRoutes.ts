/**
 * The agent routes: a node registers (the bootstrap token once, then its own node token: see
 * docs/security.md) and heartbeats (telemetry and task reports in, its desired tasks out). Every
 * body is checked by api/agentSchema.ts; an agent acts only for its own node; its address must be
 * where it registered from (agentLink.ts). Between heartbeats an agent holds a wait, answered as
 * soon as its node has new work (nodeWakeups.ts). Registered from buildApp (app.ts) with one line.
 */
import type { FastifyInstance } from 'fastify';
import { HeartbeatSchema, LeaseSchema, parseHeartbeat, parseLease, parseRegistration, parseWait, RegistrationSchema, WaitSchema, type Checked } from '../api/agentSchema.ts';
import { answers, RESPONSES } from '../api/apiSchemas.ts';
import type { NodeRegistration } from '../api/types.ts';
import { ApiError } from '../api/errors.ts';
import type { Store } from '../store/store.ts';
import { agentAddressProblem } from './agentLink.ts';
import { authenticate, hashToken, newToken, requireNode, requireRole } from './auth.ts';
import { refuse } from './query.ts';
import type { EnergyPrices } from '../core/energy/pricing.ts';
import type { NodeWakeups } from './nodeWakeups.ts';

export interface AgentRouteOptions {
  readonly store: Store;
  readonly clock: () => number;
  readonly serverId: string;
  /** Told to agents so that they fence themselves in time (see agent.ts). */
  readonly nodeLeaseMs: number;
  /** Called when a heartbeat reports a task that ended, so the loop schedules without waiting. */
  readonly onReports: () => void;
  /** The node's log key (agentLink.ts), told only to its own node's credential. */
  readonly logKey: (node: string) => string;
  /** Prices for the energy the heartbeats report (docs/energy.md); absent: energy is not recorded. */
  readonly prices?: EnergyPrices;
  /** Wakes a node's agent when it has new work (the answer to its wait). */
  readonly wakeups: NodeWakeups;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function registerAgentRoutes(app: FastifyInstance, o: AgentRouteOptions): void {
  app.post('/v1/agent/register', { schema: { description: "Agent: register (or re-register) a node. With the bootstrap (agent) token, a node without a credential gets one, bound to that node: the token whose SHA-256 the body offers as nodeTokenHash (what the agent sends), or else a new one as nodeToken in the answer, shown once; a node that has one is a 409. With a node token: its own node only (403 otherwise).", tags: ['agent'], body: RegistrationSchema, response: answers(200, RESPONSES.register) } }, async (req) => {
    const p = await authenticate(o.store, req.headers.authorization, o.clock());
    requireRole(p, 'agent', 'node');
    const reg = checked(parseRegistration(req.body), 'registration');
    const taken = () => new ApiError('conflict', `node ${reg.id} already has a credential; start its agent with its data directory, or an admin can reset it (tide node reset-credential ${reg.id})`);
    if (p.role === 'node') await requireNode(o.store, p, reg.id);
    else if (await o.store.nodeHasCredential(reg.id)) throw taken();
    const badAddress = agentAddressProblem(reg.address, req.ip);
    if (badAddress) refuse([{ path: 'address', message: badAddress }]);
    await refuseShrinkUnderTasks(o.store, reg);
    // Both roles may have it: a node token acts for this node only, and the bootstrap token reaches here only for a node without a credential, which this request creates.
    const answer = { ok: true, serverId: o.serverId, nodeLeaseMs: o.nodeLeaseMs, logKey: o.logKey(reg.id) };
    if (p.role === 'node') {
      await o.store.registerNode(reg, o.clock());
      return answer;
    }
    // The agent may offer the hash of a token it made and kept before asking (so a crash after this
    // answer cannot lose its credential); else the server makes one and answers it, once.
    const offered = isObj(req.body) ? req.body['nodeTokenHash'] : undefined;
    if (offered !== undefined && (typeof offered !== 'string' || !/^[0-9a-f]{64}$/.test(offered))) refuse([{ path: 'nodeTokenHash', message: 'must be the SHA-256 of the node token, 64 lowercase hex digits' }]);
    const nodeToken = offered === undefined ? newToken('tide_node') : null;
    const result = await o.store.bootstrapNode(reg, nodeToken === null ? (offered as string) : hashToken(nodeToken), o.clock());
    if (result === 'has-credential') throw taken();
    if (result === 'token-taken') throw new ApiError('conflict', 'nodeTokenHash: already a token\'s; offer the hash of a new token', [{ path: 'nodeTokenHash', message: 'already in use' }]);
    return nodeToken === null ? answer : { ...answer, nodeToken };
  });

  app.post('/v1/agent/heartbeat', { schema: { description: "Agent: telemetry and task reports in, the node's desired tasks out", tags: ['agent'], body: HeartbeatSchema, response: answers(200, RESPONSES.heartbeat) } }, async (req) => {
    const p = await authenticate(o.store, req.headers.authorization, o.clock());
    requireRole(p, 'agent', 'node');
    // Reports for runs this node does not hold are ignored by the store (never applied elsewhere).
    const b = checked(parseHeartbeat(req.body), 'heartbeat');
    await requireNode(o.store, p, b.node);
    // Measured energy goes in with the reports, in one transaction (store/usage.ts).
    const tasks = await o.store.heartbeat(b.node, b.telemetry, b.reports, o.clock(), b.energy && o.prices ? { report: b.energy, prices: o.prices } : undefined);
    if (tasks === null) throw new ApiError('not_found', `node ${b.node} is not registered`);
    if (b.reports.some((r) => r.state === 'exited')) o.onReports();
    // The log key goes only to the node's own credential (a legacy node heartbeating with the shared bootstrap token gets none).
    return { tasks, serverId: o.serverId, nodeLeaseMs: o.nodeLeaseMs, wakeSeq: o.wakeups.seq(b.node), ...(p.role === 'node' ? { logKey: o.logKey(b.node) } : {}) };
  });

  app.post('/v1/agent/lease', { schema: { description: "Agent: renew the node's lease alone, while a heartbeat waits for its answer (a busy server). Written ahead of queued work, many nodes together; the agent counts it as a heartbeat for its fence. A lost node is a 409: its tasks were written off, and only a heartbeat brings it back.", tags: ['agent'], body: LeaseSchema, response: answers(200, RESPONSES.lease) } }, async (req) => {
    const p = await authenticate(o.store, req.headers.authorization, o.clock());
    requireRole(p, 'agent', 'node');
    const node = checked(parseLease(req.body), 'lease renewal');
    await requireNode(o.store, p, node);
    const renewal = await o.store.renewNodeLease(node, o.clock());
    if (renewal === 'unknown') throw new ApiError('not_found', `node ${node} is not registered`);
    if (renewal === 'lost') throw new ApiError('conflict', `node ${node} is lost: its tasks were written off; stop them and heartbeat`);
    return { renewed: true, serverId: o.serverId, nodeLeaseMs: o.nodeLeaseMs };
  });

  app.post('/v1/agent/wait', { schema: { description: "Agent: wait until the node has new work (a task bound to it or stopped), then heartbeat. Answered at once when the node's wake counter is past `after`, else when it moves or, with woke false, at a random time from half of timeoutMs to all of it (so waits begun together end apart). A hint only: the heartbeat carries the desired tasks.", tags: ['agent'], body: WaitSchema, response: answers(200, RESPONSES.wait) } }, async (req) => {
    const p = await authenticate(o.store, req.headers.authorization, o.clock());
    requireRole(p, 'agent', 'node');
    const w = checked(parseWait(req.body), 'wait');
    await requireNode(o.store, p, w.node);
    // A node token is bound to a registered node; the bootstrap token (legacy nodes) may name any,
    // so that one is checked, or it could hold waits for names that are no node.
    if (p.role !== 'node' && !(await o.store.getNode(w.node))) throw new ApiError('not_found', `node ${w.node} is not registered`);
    // Answered within a random part of the timeout (half to all of it): waits begun together, as
    // after a server restart, do not all end and come back together.
    return o.wakeups.wait(w.node, w.after, Math.round(w.timeoutMs * (0.5 + Math.random() / 2)));
  });
}

/**
 * A node may re-register with other resources, but not take away what its active tasks hold
 * (GPUs by index and model, CPU, memory): the scheduler would find running tasks that no longer
 * fit and stop planning for the whole cluster. A 409 naming each field; once the tasks end (or
 * the node is lost and they are requeued) the registration goes through.
 */
async function refuseShrinkUnderTasks(store: Store, reg: NodeRegistration): Promise<void> {
  const before = await store.getNode(reg.id);
  if (!before) return;
  const tasks = (await store.snapshot()).activeTasks.filter((t) => t.node === reg.id);
  if (tasks.length === 0) return;
  const problems: { path: string; message: string }[] = [];
  const held = [...new Set(tasks.flatMap((t) => t.gpus))].sort((a, b) => a - b);
  for (const g of held) {
    if (g >= reg.gpus.length) problems.push({ path: 'gpus', message: `active tasks hold GPU ${g}; ${reg.gpus.length} GPUs would drop it` });
    else if (before.gpus[g]?.model !== reg.gpus[g]?.model) problems.push({ path: `gpus[${g}].model`, message: `active tasks run on it as ${before.gpus[g]?.model}` });
  }
  const cpu = tasks.reduce((n, t) => n + t.cpuMilli, 0);
  const mem = tasks.reduce((n, t) => n + t.memoryMib, 0);
  if (reg.cpuMilli < cpu) problems.push({ path: 'cpuMilli', message: `active tasks hold ${cpu}` });
  if (reg.memoryMib < mem) problems.push({ path: 'memoryMib', message: `active tasks hold ${mem}` });
  if (problems.length) throw new ApiError('conflict', `node ${reg.id} cannot re-register with less than its active tasks hold: ${problems.map((x) => `${x.path}: ${x.message}`).join('; ')}`, problems.slice(0, 20));
}

/** An agent body's value, or a 400 naming every bad field (at most 20 listed). */
function checked<T>(r: Checked<T>, what: string): T {
  if (r.ok) return r.value;
  const shown = r.errors.slice(0, 20);
  const more = r.errors.length > shown.length ? `; and ${r.errors.length - shown.length} more` : '';
  throw new ApiError('invalid_request', `invalid ${what}: ${shown.map((e) => `${e.path}: ${e.message}`).join('; ')}${more}`, shown);
}
