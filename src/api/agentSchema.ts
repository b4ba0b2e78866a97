/**
 * What agents send: registrations and heartbeats. All agents share one token, so these bodies
 * are untrusted input like a job spec: every field is checked (type, finite, in range), arrays
 * are bounded, and every problem is named by its path (`telemetry[2].utilization`) so the
 * server answers one 400 listing them. Unknown fields are ignored (a newer agent may send more)
 * and are never passed on. Numbers are checked as they come (YAML bodies can carry .nan/.inf:
 * Ajv's number types refuse them).
 *
 * The shapes are TypeBox schemas (published in /openapi.json) run through Ajv; what a schema
 * cannot say (GPU indexes in order, a GPU or a run reported twice, a parseable URL) is checked
 * after it by name.
 */
import { Type } from 'typebox';
import { checkSchema, inSchemaOrder } from './schemaCheck.ts';
import { MAX_ARRAY, type FieldError } from './spec.ts';
import type { EnergyReport, GpuInfo, GpuTelemetry, NodeRegistration, TaskReport } from './types.ts';

/** Node names: also the id in URLs and logs. */
export const NODE_NAME = /^[a-zA-Z0-9][-a-zA-Z0-9_.]{0,62}$/;
/** GPUs on one node (the simulator allows 64 of a model, a few models). */
export const MAX_NODE_GPUS = 256;
/** Task reports in one heartbeat: more tasks than one node could ever hold. */
export const MAX_REPORTS = 4096;
const MAX_TEXT = 1000;
/** No control characters (a node name or run id ends up in logs and terminals). */
const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$';

export interface Heartbeat {
  readonly node: string;
  readonly reports: readonly TaskReport[];
  readonly telemetry: readonly GpuTelemetry[];
  /** Measured energy (docs/energy.md); absent from agents that do not meter. */
  readonly energy?: EnergyReport;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

const int = (min: number, max: number, extra: object = {}) => Type.Integer({ minimum: min, maximum: max, 'x-message': `must be an integer from ${min} to ${max}`, ...extra });
const num = (min: number, max: number, extra: object = {}) => Type.Number({ minimum: min, maximum: max, 'x-message': `must be a number from ${min} to ${max}`, ...extra });
const text = (what: string, max: number, min = 1, pattern = PRINTABLE) => Type.String({ minLength: min, maxLength: max, pattern, 'x-message': `must be ${what} (${min}-${max} characters)` });
const list = (items: Parameters<typeof Type.Array>[0], max: number, description: string) =>
  Type.Array(items, { maxItems: max, 'x-message': { default: 'must be a list', maxItems: `{n} items, at most ${max}` }, description });
const nullable = <T extends Parameters<typeof Type.Array>[0]>(t: T, message: string) => Type.Optional(Type.Union([t, Type.Null()], { 'x-message': message }));
const STEPS = Number.MAX_SAFE_INTEGER;

export const GpuInfoSchema = Type.Object(
  {
    index: Type.Integer({ 'x-message': 'must be the GPU\'s position in the list', description: 'the device index: GPUs are listed in index order from 0' }),
    model: text('a GPU model', 64),
    memoryMib: num(0, 2 ** 30),
    uuid: text('a GPU uuid', 128, 0),
  },
  { 'x-message': 'must be an object' },
);

/** POST /v1/agent/register. */
export const RegistrationSchema = Type.Object(
  {
    id: Type.String({ pattern: NODE_NAME.source, 'x-message': 'must be a node name: letters, digits, "-", "_", "." (1-63 characters)' }),
    address: Type.String({ minLength: 1, maxLength: 2048, pattern: '^https?://[^\\u0000-\\u0020\\u007f]+$', 'x-message': 'must be the agent URL (http:// or https://)' }),
    cpuMilli: int(0, 1e9),
    memoryMib: int(0, 2 ** 40),
    gpus: list(GpuInfoSchema, MAX_NODE_GPUS, 'the node\'s GPUs in index order'),
    simulated: Type.Optional(Type.Boolean({ 'x-message': 'must be true or false' })),
    nodeTokenHash: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$', 'x-message': 'must be the SHA-256 of the node token, 64 lowercase hex digits', description: 'bootstrap only: the SHA-256 of a node token the agent made and kept (else the answer carries a new one)' })),
  },
  { 'x-message': 'must be an object' },
);

export const TaskProgressSchema = Type.Object(
  {
    step: int(0, STEPS),
    totalSteps: Type.Optional(int(0, STEPS)),
    checkpointStep: Type.Optional(int(0, STEPS)),
  },
  { 'x-message': 'must be an object {step, totalSteps?, checkpointStep?}', description: 'what the task last wrote to TIDE_PROGRESS_FILE' },
);

export const TaskReportSchema = Type.Object(
  {
    runId: text('a run id', 200),
    state: Type.Enum(['running', 'exited'], { 'x-message': 'must be running or exited' }),
    pid: nullable(int(-1, 2 ** 31 - 1), `must be an integer from -1 to ${2 ** 31 - 1}, or null`),
    exitCode: nullable(int(0, 255), 'must be an integer from 0 to 255, or null'),
    startedAt: nullable(int(0, Number.MAX_SAFE_INTEGER), 'must be a time in ms since the epoch, or null'),
    reason: nullable(Type.Enum(['start-failed', 'fenced']), 'must be start-failed or fenced'),
    message: nullable(Type.String(), 'must be text'),
    progress: nullable(TaskProgressSchema, 'must be an object {step, totalSteps?, checkpointStep?}, or null'),
    failedElements: nullable(int(0, MAX_ARRAY), `must be an integer from 0 to ${MAX_ARRAY}, or null`),
  },
  { 'x-message': 'must be an object' },
);

export const GpuTelemetrySchema = Type.Object(
  {
    index: int(0, MAX_NODE_GPUS - 1),
    utilization: num(0, 100),
    memoryUsedMib: num(0, 2 ** 30),
    powerWatts: num(0, 100_000),
  },
  { 'x-message': 'must be an object' },
);

/** Joules: the counters of a node that ran a year at 100 kW stay far below this. */
const MAX_JOULES = 1e15;

export const EnergyReportSchema = Type.Object(
  {
    epoch: text('the meter epoch', 64, 1),
    seq: int(0, Number.MAX_SAFE_INTEGER),
    nodeJ: num(0, MAX_JOULES),
    unallocatedJ: num(0, MAX_JOULES),
    runs: list(
      Type.Object({ runId: text('a run id', 200), energyJ: num(0, MAX_JOULES), idleJ: num(0, MAX_JOULES) }, { 'x-message': 'must be an object {runId, energyJ, idleJ}' }),
      MAX_REPORTS,
      'per run: its cumulative joules and the part spent while its GPU read 0 %',
    ),
  },
  { 'x-message': 'must be an object {epoch, seq, nodeJ, unallocatedJ, runs}', description: 'cumulative measured GPU energy since epoch began (docs/energy.md)' },
);

/** POST /v1/agent/heartbeat. */
export const HeartbeatSchema = Type.Object(
  {
    node: text('a node name', 63, 1, NODE_NAME.source),
    reports: list(TaskReportSchema, MAX_REPORTS, 'one report per run the agent holds'),
    telemetry: list(GpuTelemetrySchema, MAX_NODE_GPUS, 'one sample per GPU'),
    energy: Type.Optional(EnergyReportSchema),
  },
  { 'x-message': 'must be an object' },
);

/** Longest wait an agent may ask for (POST /v1/agent/wait). */
export const MAX_WAIT_MS = 60_000;

/** POST /v1/agent/wait: answered when the node has new work (server/nodeWakeups.ts) or at the timeout. */
export const WaitSchema = Type.Object(
  {
    node: text('a node name', 63, 1, NODE_NAME.source),
    after: int(0, Number.MAX_SAFE_INTEGER, { description: "the node's wake counter the agent last saw (wakeSeq of a heartbeat answer, or seq of a wait's)" }),
    timeoutMs: Type.Optional(int(100, MAX_WAIT_MS, { description: 'answer with woke false after this long (default 25,000)' })),
  },
  { 'x-message': 'must be an object {node, after, timeoutMs?}' },
);

export interface WaitRequest {
  readonly node: string;
  readonly after: number;
  readonly timeoutMs: number;
}

/** Validates a wait body. */
export function parseWait(b: unknown): Checked<WaitRequest> {
  const errors = checkSchema(WaitSchema, b);
  if (errors.length) return { ok: false, errors };
  const w = b as Record<string, unknown>;
  return { ok: true, value: { node: w['node'] as string, after: w['after'] as number, timeoutMs: (w['timeoutMs'] as number | undefined) ?? 25_000 } };
}

/**
 * POST /v1/agent/lease: renews the node's lease alone, without telemetry or reports. An agent
 * sends it while a heartbeat waits for its answer (a busy server), so that it need not fence.
 */
export const LeaseSchema = Type.Object({ node: text('a node name', 63, 1, NODE_NAME.source) }, { 'x-message': 'must be an object {node}' });

/** Validates a lease renewal body; the node's name. */
export function parseLease(b: unknown): Checked<string> {
  const errors = checkSchema(LeaseSchema, b);
  return errors.length ? { ok: false, errors } : { ok: true, value: (b as Record<string, unknown>)['node'] as string };
}

/** Validates a registration body. */
export function parseRegistration(b: unknown): Checked<NodeRegistration> {
  const errors = checkSchema(RegistrationSchema, b);
  if (errors.some((e) => e.path === '(root)')) return { ok: false, errors };
  const r = b as Record<string, unknown>;
  const named: FieldError[] = [];
  const address = r['address'];
  if (typeof address === 'string' && !errors.some((e) => e.path === 'address')) {
    const u = URL.canParse(address) ? new URL(address) : null;
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '') named.push({ path: 'address', message: 'must be the agent URL (http:// or https://)' });
  }
  const gpusIn = Array.isArray(r['gpus']) ? (r['gpus'] as unknown[]) : [];
  // Device indices are positions: tasks are bound to them and telemetry is matched by them.
  gpusIn.forEach((g, i) => {
    const index = typeof g === 'object' && g !== null ? (g as Record<string, unknown>)['index'] : i;
    if (index !== i) named.push({ path: `gpus[${i}].index`, message: `must be ${i}: GPUs are listed in index order` });
  });
  const all = merge(errors, named);
  if (all.length) return { ok: false, errors: inSchemaOrder(all, RegistrationSchema, b) };
  const gpus = gpusIn.map((g): GpuInfo => {
    const o = g as GpuInfo;
    return { index: o.index, model: o.model, memoryMib: o.memoryMib + 0, uuid: o.uuid };
  });
  return { ok: true, value: { id: r['id'] as string, address: address as string, cpuMilli: (r['cpuMilli'] as number) + 0, memoryMib: (r['memoryMib'] as number) + 0, gpus, simulated: r['simulated'] === true } };
}

/** Validates a heartbeat body. Reports name runs by runId; duplicates are refused (one report per run). */
export function parseHeartbeat(b: unknown): Checked<Heartbeat> {
  const errors = checkSchema(HeartbeatSchema, b);
  if (errors.some((e) => e.path === '(root)')) return { ok: false, errors };
  const h = b as Record<string, unknown>;
  const named: FieldError[] = [];
  const items = (k: string): Record<string, unknown>[] => (Array.isArray(h[k]) && (h[k] as unknown[]).length <= (k === 'reports' ? MAX_REPORTS : MAX_NODE_GPUS) ? (h[k] as Record<string, unknown>[]) : []);
  const seen = new Map<unknown, number>();
  items('reports').forEach((o, i) => {
    const runId = o?.['runId'];
    if (typeof runId !== 'string') return;
    const first = seen.get(runId);
    if (first !== undefined) named.push({ path: `reports[${i}].runId`, message: `a second report for run ${runId} (first: reports[${first}])` });
    else seen.set(runId, i);
  });
  const indexes = new Set<unknown>();
  items('telemetry').forEach((o, i) => {
    const index = o?.['index'];
    if (typeof index !== 'number') return;
    if (indexes.has(index)) named.push({ path: `telemetry[${i}].index`, message: `GPU ${index} reported twice` });
    indexes.add(index);
  });
  const energyIn = h['energy'] as Record<string, unknown> | undefined;
  const energyRuns = typeof energyIn === 'object' && energyIn !== null && Array.isArray(energyIn['runs']) && (energyIn['runs'] as unknown[]).length <= MAX_REPORTS ? (energyIn['runs'] as Record<string, unknown>[]) : [];
  const metered = new Set<unknown>();
  energyRuns.forEach((o, i) => {
    const runId = o?.['runId'];
    if (typeof runId !== 'string') return;
    if (metered.has(runId)) named.push({ path: `energy.runs[${i}].runId`, message: `run ${runId} metered twice` });
    metered.add(runId);
  });
  const all = merge(errors, named);
  if (all.length) return { ok: false, errors: inSchemaOrder(all, HeartbeatSchema, b) };
  const reports = items('reports').map((o): TaskReport => {
    const p = o['progress'] as Record<string, number> | null | undefined;
    return {
      runId: o['runId'] as string,
      state: o['state'] as 'running' | 'exited',
      pid: (o['pid'] ?? null) as number | null,
      exitCode: (o['exitCode'] ?? null) as number | null,
      ...(o['startedAt'] !== undefined && o['startedAt'] !== null ? { startedAt: o['startedAt'] as number } : {}),
      ...(o['reason'] !== undefined && o['reason'] !== null ? { reason: o['reason'] as 'start-failed' | 'fenced' } : {}),
      ...(typeof o['message'] === 'string' ? { message: o['message'].slice(0, MAX_TEXT) } : {}),
      ...(typeof o['failedElements'] === 'number' ? { failedElements: o['failedElements'] } : {}),
      ...(p ? { progress: { step: p['step'] as number, ...(p['totalSteps'] !== undefined ? { totalSteps: p['totalSteps'] } : {}), ...(p['checkpointStep'] !== undefined ? { checkpointStep: p['checkpointStep'] } : {}) } } : {}),
    };
  });
  const telemetry = items('telemetry').map((o): GpuTelemetry => ({ index: o['index'] as number, utilization: (o['utilization'] as number) + 0, memoryUsedMib: (o['memoryUsedMib'] as number) + 0, powerWatts: (o['powerWatts'] as number) + 0 }));
  const energy: EnergyReport | undefined =
    energyIn === undefined
      ? undefined
      : {
          epoch: energyIn['epoch'] as string,
          seq: energyIn['seq'] as number,
          nodeJ: (energyIn['nodeJ'] as number) + 0,
          unallocatedJ: (energyIn['unallocatedJ'] as number) + 0,
          runs: energyRuns.map((o) => ({ runId: o['runId'] as string, energyJ: (o['energyJ'] as number) + 0, idleJ: (o['idleJ'] as number) + 0 })),
        };
  return { ok: true, value: { node: h['node'] as string, reports, telemetry, ...(energy ? { energy } : {}) } };
}

/** Schema errors, then the named ones at paths the schema did not already name. */
function merge(errors: FieldError[], named: FieldError[]): FieldError[] {
  const seen = new Set(errors.map((e) => e.path));
  return [...errors, ...named.filter((e) => !seen.has(e.path))];
}
