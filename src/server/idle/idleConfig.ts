/**
 * The cluster config's `idle:` section and a job's idle policy (docs/idle.md).
 *
 *   idle:
 *     afterMinutes: 30         # how long an allocated GPU must read idle before it is reported
 *     utilizationPercent: 5    # idle: utilization.gpu at or below this …
 *     memoryPercent: 5         # … and memory in use at or below this share of the GPU's memory
 *     action: report           # report | reclaim: what happens to a job whose GPUs all stay idle
 *     jobsMayOptOut: true      # false: a job's `idlePolicy: report` does not override action reclaim
 *
 * A job's `idlePolicy` (report | reclaim) overrides `action`; inference (and service) jobs, which
 * idle by design in their trough, default to report.
 */
import type { JobSpec } from '../../api/spec.ts';

export const IDLE_POLICIES = ['report', 'reclaim'] as const;
export type IdlePolicy = (typeof IDLE_POLICIES)[number];

/** The section as written (every field optional). */
export interface IdleConfigInput {
  readonly afterMinutes?: number;
  readonly utilizationPercent?: number;
  readonly memoryPercent?: number;
  readonly action?: IdlePolicy;
  readonly jobsMayOptOut?: boolean;
}

/** The section with its defaults filled. */
export interface IdleConfig {
  readonly afterMinutes: number;
  readonly utilizationPercent: number;
  readonly memoryPercent: number;
  readonly action: IdlePolicy;
  readonly jobsMayOptOut: boolean;
}

export const DEFAULT_IDLE_CONFIG: IdleConfig = { afterMinutes: 30, utilizationPercent: 5, memoryPercent: 5, action: 'report', jobsMayOptOut: true };

export function idleConfigOf(input: IdleConfigInput | undefined): IdleConfig {
  return { ...DEFAULT_IDLE_CONFIG, ...Object.fromEntries(Object.entries(input ?? {}).filter(([, v]) => v !== undefined && v !== null)) };
}

/** Kinds that serve requests and idle by design between them: report-only unless they ask for reclaim. */
const SERVING_KINDS: ReadonlySet<string> = new Set(['inference', 'service']);

/**
 * What happens to the job when all its GPUs stay idle: its own `idlePolicy` if it gives one
 * (`report` only where the cluster lets jobs opt out, or for serving kinds), else report for
 * serving kinds and the cluster's `action` for the others.
 */
export function idlePolicyOf(spec: Pick<JobSpec, 'kind' | 'idlePolicy'>, c: IdleConfig): IdlePolicy {
  const serving = SERVING_KINDS.has(spec.kind);
  if (spec.idlePolicy === 'reclaim') return 'reclaim';
  if (spec.idlePolicy === 'report') return serving || c.jobsMayOptOut ? 'report' : c.action;
  return serving ? 'report' : c.action;
}
