/**
 * The tidal benchmark's fixed ground (`../shared/docs/tidal-benchmark.md`): 109 GPUs serving
 * one service (16.4 s mean service, p99 wait ≤ 5 s per 5-minute window, at least 2 replicas,
 * log-normal load time with median 22.7 s and p90 42 s), λ_peak = 0.65 × 109 / 16.4 s,
 * training borrowers with 30-minute checkpoints, 2-minute restarts and 30-second eviction
 * checkpoints, decisions every 30 s, 7 days of warm-up. One run is (curve, policy, seed).
 */
import type { ServiceShape } from '../../core/tidal/autoscaler.ts';
import { getAutoscaler } from '../../core/tidal/policies/index.ts';
import type { BatchSpec, BorrowerModel } from './borrowers.ts';
import { buildCurve, type CurveSpec } from './curves.ts';
import { simulateTidal, type TidalRunResult } from './tidalSim.ts';

export const TIDAL_GPUS = 109;
export const TIDAL_SHAPE: ServiceShape = {
  minReplicas: 2,
  maxReplicas: TIDAL_GPUS,
  gpusPerReplica: 1,
  concurrency: 1,
  serviceSeconds: 16.4,
  sloQuantile: 0.99,
  sloWaitSeconds: 5,
  sloWindowSeconds: 300,
  loadSeconds: { median: 22.7, p90: 42 },
  evictSeconds: 30,
};
/** 109 replicas 65 % busy at the curve's peak. */
export const TIDAL_LAMBDA_PEAK = (0.65 * TIDAL_GPUS) / TIDAL_SHAPE.serviceSeconds;
export const TIDAL_BORROWERS: BorrowerModel = { restartSeconds: 120, checkpointSeconds: 1800, evictSeconds: 30 };
export const TIDAL_DECISION_SECONDS = 30;
export const TIDAL_WARMUP_DAYS = 7;
export const TIDAL_DAYS = 14;

export interface TidalRunSpec {
  readonly curve: CurveSpec;
  readonly days: number;
  readonly warmupDays: number;
  readonly seed: number;
  readonly policy: string;
  /** Autoscaler options (each policy takes the keys it knows). */
  readonly options?: Readonly<Record<string, number>>;
  readonly batch?: BatchSpec;
}

export function runTidal(spec: TidalRunSpec): TidalRunResult {
  const factory = getAutoscaler(spec.policy);
  if (!factory) throw new Error(`unknown autoscaler '${spec.policy}'`);
  const curve = buildCurve(spec.curve, spec.days, spec.seed);
  return simulateTidal({
    shape: TIDAL_SHAPE,
    lambdaPeak: TIDAL_LAMBDA_PEAK,
    curve,
    days: spec.days,
    warmupDays: spec.warmupDays,
    decisionSeconds: TIDAL_DECISION_SECONDS,
    borrowers: TIDAL_BORROWERS,
    ...(spec.batch ? { batch: spec.batch } : {}),
    seed: spec.seed,
    autoscaler: factory(TIDAL_SHAPE, spec.options),
    oracle: spec.policy === 'oracle',
  });
}
