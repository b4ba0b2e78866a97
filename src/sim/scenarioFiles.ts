/**
 * Readers for `tide sim`'s what-if inputs. A cluster file (YAML or JSON) lists node groups,
 * queues with quotas, tenants and outages; a workload file is YAML/JSON (`jobs: [...]`) or CSV
 * (one job per row). Errors name the file, the line and the field.
 *
 * Cluster:  nodes: [{ name, count, gpus, model, cpuMilli?, memoryMib? }]
 *           queues?: [{ name, cohort?, weight?, nominalQuota: {MODEL|'*': n}, borrowingLimit?, lendingLimit? }]
 *           tenants?: [{ name, weight? }]   outages?: [{ node, at, repairedAt }]
 * Job:      { id, submit, gpus, gpusPerTask?, tenant?, queue?, priorityClass?, totalSteps,
 *             throughput: {MODEL: steps/s}, timeLimitSeconds?, checkpointIntervalSeconds?,
 *             restartCostSeconds?, preemptible? }
 * CSV:      id,submit,gpus,total_steps,throughput_<MODEL>… and optionally gpus_per_task,tenant,
 *           queue,priority_class,time_limit_seconds,checkpoint_interval_seconds,restart_cost_seconds,preemptible
 */
import { readFileSync } from 'node:fs';
import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { gangJob, gpuNodes } from '../core/scheduling/build.ts';
import { PRIORITY_CLASSES, type JobSpec, type QueueConfig, type TenantConfig } from '../core/scheduling/model.ts';
import { nodeId, type NodeSpec } from '../core/model.ts';
import { readCsv } from '../traces/csv.ts';
import { inputError, UserError } from '../util/errors.ts';
import type { NodeOutage } from './simulator.ts';

export interface ClusterFile {
  readonly nodes: readonly NodeSpec[];
  readonly queues: readonly QueueConfig[];
  readonly tenants: readonly TenantConfig[];
  readonly outages: readonly NodeOutage[];
}

type Path = readonly (string | number)[];

/** Bounds that keep a typo (count: 1e9) from allocating the machine away. */
export const MAX_NODES_PER_GROUP = 100_000;
export const MAX_GPUS_PER_NODE = 64;

class Reader {
  private readonly lines = new LineCounter();
  readonly doc: Document;
  constructor(
    readonly file: string,
    text: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines });
    const err = this.doc.errors[0];
    if (err) throw inputError(file, this.lines.linePos(err.pos[0]).line, null, err.message.split('\n')[0] ?? 'cannot parse');
  }

  lineOf(path: Path): number {
    for (let p = path; p.length > 0; p = p.slice(0, -1)) {
      const node = this.doc.getIn(p, true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return this.lines.linePos(node.range[0]).line;
    }
    return 1;
  }

  fail(path: Path, message: string): never {
    throw inputError(this.file, this.lineOf(path), path.map((p) => (typeof p === 'number' ? `[${p}]` : p)).join('.').replace(/\.\[/g, '['), message);
  }

  get(path: Path): unknown {
    const v = this.doc.getIn(path, false) as unknown;
    return v !== null && typeof v === 'object' && 'toJSON' in v ? (v as { toJSON(): unknown }).toJSON() : v;
  }

  count(path: Path): number {
    const node = this.doc.getIn(path, true);
    if (node === undefined) return 0;
    if (!isSeq(node)) this.fail(path, 'expected a list');
    return node.items.length;
  }

  has(path: Path): boolean {
    return this.doc.getIn(path, true) !== undefined;
  }

  str(path: Path, fallback?: string): string {
    const v = this.get(path);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'string' && typeof v !== 'number') this.fail(path, v === undefined ? 'missing' : 'expected text');
    return String(v);
  }

  /** A finite number; `max` defaults to the largest exact integer, so nothing absurd gets through. */
  num(path: Path, opts: { min?: number; max?: number; integer?: boolean; fallback?: number } = {}): number {
    const v = this.get(path);
    if (v === undefined && opts.fallback !== undefined) return opts.fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, v === undefined ? 'missing' : `expected a number, got ${JSON.stringify(v)}`);
    if (opts.integer && !Number.isInteger(v)) this.fail(path, `expected an integer, got ${v}`);
    if (opts.min !== undefined && v < opts.min) this.fail(path, `must be at least ${opts.min}, got ${v}`);
    const max = opts.max ?? Number.MAX_SAFE_INTEGER;
    if (v > max) this.fail(path, `must be at most ${max}, got ${v}`);
    return v;
  }

  quota(path: Path): Record<string, number> | undefined {
    if (!this.has(path)) return undefined;
    const node = this.doc.getIn(path, true);
    if (!isMap(node)) this.fail(path, 'expected a map of GPU model (or *) to GPUs');
    const out: Record<string, number> = {};
    for (const item of node.items) {
      const key = String((item.key as { value?: unknown })?.value ?? item.key);
      out[key] = this.num([...path, key], { min: 0 });
    }
    return out;
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${file}: cannot read (${code === 'ENOENT' ? 'no such file' : (code ?? String(e))})`);
  }
}

export function readClusterFile(file: string): ClusterFile {
  const r = new Reader(file, readText(file));
  const nodes: NodeSpec[] = [];
  const groups = r.count(['nodes']);
  if (groups === 0) r.fail(['nodes'], 'a cluster needs at least one node group');
  for (let i = 0; i < groups; i++) {
    const name = r.str(['nodes', i, 'name']);
    const count = r.num(['nodes', i, 'count'], { min: 1, max: MAX_NODES_PER_GROUP, integer: true });
    const gpus = r.num(['nodes', i, 'gpus'], { min: 0, max: MAX_GPUS_PER_NODE, integer: true });
    const model = r.str(['nodes', i, 'model'], 'cpu');
    const group = gpuNodes(model, count, gpus, name);
    const cpu = r.num(['nodes', i, 'cpuMilli'], { min: 0, fallback: -1 });
    const mem = r.num(['nodes', i, 'memoryMib'], { min: 0, fallback: -1 });
    for (const n of group) nodes.push({ ...n, ...(cpu >= 0 ? { cpuMilli: cpu } : {}), ...(mem >= 0 ? { memoryMib: mem } : {}), id: nodeId(n.id) });
  }
  const ids = new Set<string>();
  for (const n of nodes) {
    if (ids.has(n.id)) r.fail(['nodes'], `two node groups make node '${n.id}': give groups distinct names`);
    ids.add(n.id);
  }
  const queues: QueueConfig[] = [];
  for (let i = 0; i < r.count(['queues']); i++) {
    const nominal = r.quota(['queues', i, 'nominalQuota']) ?? r.fail(['queues', i, 'nominalQuota'], 'missing');
    const borrowing = r.quota(['queues', i, 'borrowingLimit']);
    const lending = r.quota(['queues', i, 'lendingLimit']);
    const cohort = r.has(['queues', i, 'cohort']) ? r.str(['queues', i, 'cohort']) : undefined;
    const name = r.str(['queues', i, 'name']);
    if (queues.some((q) => q.name === name)) r.fail(['queues', i, 'name'], `queue '${name}' is defined twice`);
    queues.push({
      name,
      nominalQuota: nominal,
      weight: r.num(['queues', i, 'weight'], { min: 0, fallback: 1 }),
      ...(cohort === undefined ? {} : { cohort }),
      ...(borrowing ? { borrowingLimit: borrowing } : {}),
      ...(lending ? { lendingLimit: lending } : {}),
    });
  }
  const tenants: TenantConfig[] = [];
  for (let i = 0; i < r.count(['tenants']); i++) tenants.push({ name: r.str(['tenants', i, 'name']), weight: r.num(['tenants', i, 'weight'], { min: 0, fallback: 1 }) });
  const outages: NodeOutage[] = [];
  for (let i = 0; i < r.count(['outages']); i++) {
    const node = r.str(['outages', i, 'node']);
    if (!ids.has(node)) r.fail(['outages', i, 'node'], `no node '${node}' (nodes are named <group name>-<index>)`);
    const at = r.num(['outages', i, 'at'], { min: 0 });
    outages.push({ node: nodeId(node), at, repairedAt: r.num(['outages', i, 'repairedAt'], { min: at }) });
  }
  return { nodes, queues, tenants, outages };
}

function jobFrom(input: Parameters<typeof gangJob>[0]): JobSpec {
  return gangJob(input);
}

/** Reads a workload file: `.csv`, or YAML/JSON with a `jobs` list. */
export function readWorkloadFile(file: string): JobSpec[] {
  if (file.toLowerCase().endsWith('.csv')) return readWorkloadCsv(file);
  const r = new Reader(file, readText(file));
  const jobs: JobSpec[] = [];
  const n = r.count(['jobs']);
  if (n === 0) r.fail(['jobs'], 'expected a non-empty list of jobs');
  for (let i = 0; i < n; i++) {
    const p = (k: string): Path => ['jobs', i, k];
    const throughput = r.quota(p('throughput')) ?? r.fail(p('throughput'), 'missing: steps per second per GPU model');
    if (Object.values(throughput).every((v) => v <= 0)) r.fail(p('throughput'), 'needs steps per second on at least one GPU model');
    const priorityClass = r.str(p('priorityClass'), 'normal');
    if (!Object.hasOwn(PRIORITY_CLASSES, priorityClass)) r.fail(p('priorityClass'), `unknown class '${priorityClass}' (known: ${Object.keys(PRIORITY_CLASSES).join(', ')})`);
    const opt = (k: string, min = 0): number | undefined => (r.has(p(k)) ? r.num(p(k), { min }) : undefined);
    const gpus = r.num(p('gpus'), { min: 0, integer: true });
    const perTask = opt('gpusPerTask', 1);
    if (perTask !== undefined && gpus % perTask !== 0) r.fail(p('gpusPerTask'), `${gpus} GPUs do not split into tasks of ${perTask}`);
    const limit = opt('timeLimitSeconds');
    const ckpt = opt('checkpointIntervalSeconds');
    const restart = opt('restartCostSeconds');
    const preemptible = r.get(p('preemptible'));
    if (preemptible !== undefined && typeof preemptible !== 'boolean') r.fail(p('preemptible'), 'expected true or false');
    jobs.push(
      jobFrom({
        id: r.str(p('id')),
        gpus,
        throughput,
        totalSteps: r.num(p('totalSteps'), { min: 1 }),
        submitTime: r.num(p('submit'), { min: 0, fallback: 0 }),
        tenant: r.str(p('tenant'), 'default'),
        queue: r.str(p('queue'), 'default'),
        priorityClass,
        ...(perTask === undefined ? {} : { gpusPerTask: perTask }),
        ...(limit === undefined ? {} : { timeLimitSeconds: limit }),
        ...(ckpt === undefined ? {} : { checkpointIntervalSeconds: ckpt }),
        ...(restart === undefined ? {} : { restartCostSeconds: restart }),
        ...(preemptible === undefined ? {} : { preemptible: preemptible as boolean }),
      }),
    );
  }
  checkUniqueIds(file, jobs);
  return jobs;
}

function readWorkloadCsv(file: string): JobSpec[] {
  const table = readCsv(file, ['id', 'submit', 'gpus', 'total_steps']);
  const models = table.header.filter((h) => h.startsWith('throughput_')).map((h) => h.slice('throughput_'.length));
  if (models.length === 0) throw inputError(file, 1, 'throughput_<MODEL>', 'missing column: give steps per second per GPU model, e.g. throughput_V100');
  const jobs = table.rows.map((row) => {
    const num = (col: string, min: number, fallback?: number): number => {
      const raw = row.get(col);
      if (raw === '' && fallback !== undefined) return fallback;
      const v = Number(raw);
      if (raw === '' || !Number.isFinite(v) || v < min || v > Number.MAX_SAFE_INTEGER) throw inputError(file, row.line, col, `'${raw}' is not a number from ${min} to ${Number.MAX_SAFE_INTEGER}`);
      return v;
    };
    const throughput: Record<string, number> = {};
    for (const m of models) throughput[m] = num(`throughput_${m}`, 0, 0);
    if (Object.values(throughput).every((v) => v <= 0)) throw inputError(file, row.line, `throughput_${models[0]}`, 'the job can run on no GPU model');
    const priorityClass = row.get('priority_class') || 'normal';
    if (!Object.hasOwn(PRIORITY_CLASSES, priorityClass)) throw inputError(file, row.line, 'priority_class', `unknown class '${priorityClass}'`);
    const gpus = num('gpus', 0);
    if (!Number.isInteger(gpus)) throw inputError(file, row.line, 'gpus', `'${row.get('gpus')}' is not an integer`);
    const limit = row.get('time_limit_seconds');
    const ckpt = row.get('checkpoint_interval_seconds');
    const restart = row.get('restart_cost_seconds');
    const pre = row.get('preemptible');
    if (pre !== '' && pre !== 'true' && pre !== 'false') throw inputError(file, row.line, 'preemptible', `'${pre}' is not true or false`);
    return jobFrom({
      id: row.get('id'),
      gpus,
      throughput,
      totalSteps: num('total_steps', 1),
      submitTime: num('submit', 0),
      tenant: row.get('tenant') || 'default',
      queue: row.get('queue') || 'default',
      priorityClass,
      ...(row.get('gpus_per_task') ? { gpusPerTask: num('gpus_per_task', 1) } : {}),
      ...(limit ? { timeLimitSeconds: num('time_limit_seconds', 0) } : {}),
      ...(ckpt ? { checkpointIntervalSeconds: num('checkpoint_interval_seconds', 0) } : {}),
      ...(restart ? { restartCostSeconds: num('restart_cost_seconds', 0) } : {}),
      ...(pre ? { preemptible: pre === 'true' } : {}),
    });
  });
  checkUniqueIds(file, jobs);
  return jobs;
}

function checkUniqueIds(file: string, jobs: readonly JobSpec[]): void {
  const seen = new Set<string>();
  for (const j of jobs) {
    if (seen.has(j.id)) throw new UserError(`${file}: job id '${j.id}' appears twice`);
    seen.add(j.id);
  }
}
