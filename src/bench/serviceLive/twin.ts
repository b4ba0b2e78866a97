/**
 * The live service run's simulated twin: the tidal simulator (src/sim/tidal/) on the same
 * ground as `tide bench service-live` — the same pool, peak rate, curve (built by the same
 * function from the same seed), SLO, load times, borrowers' checkpoints and restarts, decision
 * interval and autoscaler with its options — so the two can be read side by side. The requests
 * differ (each side draws its own Poisson arrivals and service times), and the simulator has no
 * control plane: a replica is placed, started and probed at the instant it is decided.
 */
import type { ServiceShape } from '../../core/tidal/autoscaler.ts';
import { getAutoscaler } from '../../core/tidal/policies/index.ts';
import type { RateCurve } from '../../sim/tidal/curves.ts';
import { TIDAL_BORROWERS, TIDAL_DECISION_SECONDS, TIDAL_SHAPE } from '../../sim/tidal/protocol.ts';
import { runFigures } from '../../sim/tidal/tidalBenchmark.ts';
import { simulateTidal } from '../../sim/tidal/tidalSim.ts';

/** What the twin reports, in the live report's terms (GPU-hours over the run). */
export interface TwinFigures {
  readonly requests: number;
  readonly sloWindowsMetPct: number;
  readonly windows: number;
  readonly windowsMet: number;
  readonly lentGpuHours: number;
  readonly lentGpuPct: number;
  readonly trainingNetGpuHours: number;
  readonly lostGpuHours: number;
  readonly inferenceBusyPct: number;
  readonly usefulUtilisationPct: number;
  readonly evictions: { readonly planned: number; readonly immediate: number };
  readonly reclaimLatencyP99Seconds: number | null;
}

export interface TwinInput {
  readonly gpus: number;
  readonly lambdaPeak: number;
  readonly curve: RateCurve;
  readonly days: number;
  readonly seed: number;
  readonly autoscaler: string;
  readonly options?: Readonly<Record<string, number>>;
}

export function runTwin(t: TwinInput): TwinFigures {
  const shape: ServiceShape = { ...TIDAL_SHAPE, maxReplicas: t.gpus };
  const factory = getAutoscaler(t.autoscaler);
  if (!factory) throw new Error(`unknown autoscaler '${t.autoscaler}'`);
  const r = simulateTidal({
    shape,
    lambdaPeak: t.lambdaPeak,
    curve: t.curve,
    days: t.days,
    warmupDays: 0,
    decisionSeconds: TIDAL_DECISION_SECONDS,
    borrowers: TIDAL_BORROWERS,
    seed: t.seed,
    autoscaler: factory(shape, t.options),
    oracle: t.autoscaler === 'oracle',
  });
  const f = runFigures(r);
  const hours = (s: number): number => s / 3600;
  const lent = r.stateSeconds.lent + r.stateSeconds.evicting;
  return {
    requests: r.requests,
    sloWindowsMetPct: f.sloWindowsMetPct,
    windows: r.windows,
    windowsMet: r.windowsMet,
    lentGpuHours: hours(lent),
    lentGpuPct: f.lentGpuPct,
    trainingNetGpuHours: hours(r.ledger.trainingUseful),
    lostGpuHours: hours(lent - r.ledger.trainingUseful),
    inferenceBusyPct: f.inferenceBusyPct,
    usefulUtilisationPct: f.usefulUtilisationPct,
    evictions: { planned: r.ledger.evictionsPlanned, immediate: r.ledger.evictionsImmediate },
    reclaimLatencyP99Seconds: f.reclaimLatencyP99Seconds,
  };
}
