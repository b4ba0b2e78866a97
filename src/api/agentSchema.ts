/**
 * What agents send: registrations and heartbeats. All agents share one token, so these bodies
 * are untrusted input like a job spec: every field is checked (type, finite, in range), arrays
 * are bounded, and every problem is named by its path (`telemetry[2].utilization`) so the
 * server answers one 400 listing them. Unknown fields are ignored (a newer agent may send more)
 * and are never passed on. Numbers are checked as they come (YAML bodies can carry .nan/.inf).
 */
import type { FieldError } from './spec.ts';
import type { GpuInfo, GpuTelemetry, NodeRegistration, TaskProgress, TaskReport } from './types.ts';

/** Node names: also the id in URLs and logs. */
export const NODE_NAME = /^[a-zA-Z0-9][-a-zA-Z0-9_.]{0,62}$/;
/** GPUs on one node (the simulator allows 64 of a model, a few models). */
export const MAX_NODE_GPUS = 256;
/** Task reports in one heartbeat: more tasks than one node could ever hold. */
export const MAX_REPORTS = 4096;
const MAX_TEXT = 1000;

export interface Heartbeat {
  readonly node: string;
  readonly reports: readonly TaskReport[];
  readonly telemetry: readonly GpuTelemetry[];
}

export type Checked<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Collects problems; each reader returns a value of the right type even when it records one. */
class Fields {
  readonly errors: FieldError[] = [];
  bad(path: string, message: string): void {
    this.errors.push({ path, message });
  }
  /** A number in [min, max] (an integer when `integer`). */
  num(v: unknown, path: string, min: number, max: number, integer = true): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
      this.bad(path, `must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
      return min;
    }
    return v + 0;
  }
  /** A string of min..max characters without control characters, matching `re` when given. */
  text(v: unknown, path: string, max: number, re?: RegExp, what = 'text', min = 1): string {
    if (typeof v !== 'string' || v.length < min || v.length > max || CONTROL.test(v) || (re && !re.test(v))) {
      this.bad(path, `must be ${what} (${min}-${max} characters)`);
      return '';
    }
    return v;
  }
  /** A list of at most `max` items. */
  list(v: unknown, path: string, max: number): unknown[] {
    if (!Array.isArray(v)) {
      this.bad(path, 'must be a list');
      return [];
    }
    if (v.length > max) {
      this.bad(path, `${v.length} items, at most ${max}`);
      return [];
    }
    return v;
  }
  obj(v: unknown, path: string): Record<string, unknown> | null {
    if (isObj(v)) return v;
    this.bad(path, 'must be an object');
    return null;
  }
  result<T>(value: T): Checked<T> {
    return this.errors.length ? { ok: false, errors: this.errors } : { ok: true, value };
  }
}

function httpUrl(v: unknown, f: Fields): string {
  const s = f.text(v, 'address', 2048, undefined, 'the agent URL');
  if (s === '') return s;
  const u = URL.canParse(s) ? new URL(s) : null;
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '') f.bad('address', 'must be the agent URL (http:// or https://)');
  return s;
}

/** Validates a registration body. */
export function parseRegistration(b: unknown): Checked<NodeRegistration> {
  const f = new Fields();
  const r = f.obj(b, '(root)');
  if (!r) return f.result(null as never);
  const id = f.text(r['id'], 'id', 63, NODE_NAME, 'a node name: letters, digits, "-", "_", "."');
  const address = httpUrl(r['address'], f);
  const cpuMilli = f.num(r['cpuMilli'], 'cpuMilli', 0, 1e9);
  const memoryMib = f.num(r['memoryMib'], 'memoryMib', 0, 2 ** 40);
  const gpus = f.list(r['gpus'], 'gpus', MAX_NODE_GPUS).map((g, i): GpuInfo => {
    const at = `gpus[${i}]`;
    const o = f.obj(g, at) ?? {};
    // Device indices are positions: tasks are bound to them and telemetry is matched by them.
    if (o['index'] !== i) f.bad(`${at}.index`, `must be ${i}: GPUs are listed in index order`);
    return { index: i, model: f.text(o['model'], `${at}.model`, 64, undefined, 'a GPU model'), memoryMib: f.num(o['memoryMib'], `${at}.memoryMib`, 0, 2 ** 30, false), uuid: f.text(o['uuid'], `${at}.uuid`, 128, undefined, 'a GPU uuid', 0) };
  });
  const simulated = r['simulated'] ?? false;
  if (typeof simulated !== 'boolean') f.bad('simulated', 'must be true or false');
  return f.result({ id, address, cpuMilli, memoryMib, gpus, simulated: simulated === true });
}

/** A task's progress as the agent forwards it: {step, totalSteps?, checkpointStep?}, non-negative safe integers. */
function parseProgress(v: unknown, at: string, f: Fields): TaskProgress {
  const o = f.obj(v, at) ?? {};
  const count = (k: string): number => f.num(o[k], `${at}.${k}`, 0, Number.MAX_SAFE_INTEGER);
  const step = count('step');
  const opt = (k: 'totalSteps' | 'checkpointStep'): { [K in typeof k]?: number } => (o[k] === undefined || o[k] === null ? {} : { [k]: count(k) });
  return { step, ...opt('totalSteps'), ...opt('checkpointStep') };
}

/** Validates a heartbeat body. Reports name runs by runId; duplicates are refused (one report per run). */
export function parseHeartbeat(b: unknown): Checked<Heartbeat> {
  const f = new Fields();
  const h = f.obj(b, '(root)');
  if (!h) return f.result(null as never);
  const node = f.text(h['node'], 'node', 63, NODE_NAME, 'a node name');
  const seen = new Map<string, number>();
  const reports = f.list(h['reports'], 'reports', MAX_REPORTS).map((x, i): TaskReport => {
    const at = `reports[${i}]`;
    const o = f.obj(x, at) ?? {};
    const runId = f.text(o['runId'], `${at}.runId`, 200, undefined, 'a run id');
    const first = seen.get(runId);
    if (runId !== '' && first !== undefined) f.bad(`${at}.runId`, `a second report for run ${runId} (first: reports[${first}])`);
    seen.set(runId, i);
    const state = o['state'];
    if (state !== 'running' && state !== 'exited') f.bad(`${at}.state`, 'must be running or exited');
    const pid = o['pid'] ?? null;
    const exitCode = o['exitCode'] ?? null;
    const report: TaskReport = {
      runId,
      state: state === 'running' ? 'running' : 'exited',
      pid: pid === null ? null : f.num(pid, `${at}.pid`, -1, 2 ** 31 - 1),
      exitCode: exitCode === null ? null : f.num(exitCode, `${at}.exitCode`, 0, 255),
    };
    const extra: { startedAt?: number; reason?: 'start-failed' | 'fenced'; message?: string; progress?: TaskProgress } = {};
    if (o['progress'] !== undefined && o['progress'] !== null) extra.progress = parseProgress(o['progress'], `${at}.progress`, f);
    if (o['startedAt'] !== undefined && o['startedAt'] !== null) extra.startedAt = f.num(o['startedAt'], `${at}.startedAt`, 0, Number.MAX_SAFE_INTEGER);
    const reason = o['reason'] ?? null;
    if (reason !== null) {
      if (reason === 'start-failed' || reason === 'fenced') extra.reason = reason;
      else f.bad(`${at}.reason`, 'must be start-failed or fenced');
    }
    const message = o['message'] ?? null;
    if (message !== null) {
      if (typeof message === 'string') extra.message = message.slice(0, MAX_TEXT);
      else f.bad(`${at}.message`, 'must be text');
    }
    return { ...report, ...extra };
  });
  const indexes = new Set<number>();
  const telemetry = f.list(h['telemetry'], 'telemetry', MAX_NODE_GPUS).map((x, i): GpuTelemetry => {
    const at = `telemetry[${i}]`;
    const o = f.obj(x, at) ?? {};
    const index = f.num(o['index'], `${at}.index`, 0, MAX_NODE_GPUS - 1);
    if (index === o['index'] && indexes.has(index)) f.bad(`${at}.index`, `GPU ${index} reported twice`);
    indexes.add(index);
    return {
      index,
      utilization: f.num(o['utilization'], `${at}.utilization`, 0, 100, false),
      memoryUsedMib: f.num(o['memoryUsedMib'], `${at}.memoryUsedMib`, 0, 2 ** 30, false),
      powerWatts: f.num(o['powerWatts'], `${at}.powerWatts`, 0, 100_000, false),
    };
  });
  return f.result({ node, reports, telemetry });
}
