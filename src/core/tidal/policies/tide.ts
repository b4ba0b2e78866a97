/**
 * `tide`: Tide's own autoscaler. It lends what the forecast says the service will not need,
 * and takes it back ahead of the forecast rise.
 *
 * - **Forecast** (`forecast.ts`): the mean rate per SLO window, from the service's own history
 *   (daily and weekly profiles scaled by the recent level). It sees only the past.
 * - **Lead**: a replica started now is serving after a borrower's checkpoint, one decision
 *   interval and the model load; the load counts at its 99th percentile. The plan covers the
 *   highest forecast over that lead plus `aheadSeconds` (lending a GPU for a few minutes costs
 *   the borrower's restart for little work), and at least the last minute's rate, discounted by
 *   `nowWeight` (0.8) for the noise of a one-minute count.
 * - **Margin from the tracked error**: for every window, the plan that was made a lead before
 *   it began is compared with what came; the margin is a high quantile (`quantile`) of
 *   actual/planned over the last days (`ErrorQuantile`). A steady service gets a thin margin,
 *   a jittery or spiky one a thick one, with nothing tuned per curve.
 * - **SLO feedback**: a missed window widens the margin by `missStep`, fading back over days.
 * - **Reactive floor**: never fewer replicas than the rate of the last minute (raised by
 *   `floorMargin`) and the queue need; when that floor is above what is running or loading,
 *   demand has outrun the forecast: the decision is urgent (immediate reclaim).
 * - **Hold**: a replica count stays for `holdSeconds` before it is lowered (noise does not lend
 *   and reclaim the same GPU back and forth).
 * - **Sizing for the window**: replicas for a rate are the M/M/c count whose steady-state
 *   probability of waiting past the SLO is `waitTail` (2e-5), not the SLO's 1 %: the SLO is
 *   judged per 5-minute window, where one busy spell makes many waits late together (see
 *   sizing.ts).
 * - Until it has observed `learnDays` (1) of the service it keeps the whole pool.
 */
import type { AutoscalerFactory, ReplicaDecision, ServiceObservation } from '../autoscaler.ts';
import { BucketRates } from '../buckets.ts';
import { ErrorQuantile } from '../errorQuantile.ts';
import { SeasonalForecaster } from '../forecast.ts';
import { loadQuantile, replicaSizer } from '../sizing.ts';

const DAY = 86_400;

export const tide: AutoscalerFactory = (shape, options) => {
  const opt = (key: string, fallback: number): number => options?.[key] ?? fallback;
  const quantile = opt('quantile', 0.995);
  const aheadSeconds = opt('aheadSeconds', 600);
  const holdSeconds = opt('holdSeconds', 300);
  const learnSeconds = opt('learnDays', 1) * DAY;
  const floorMargin = opt('floorMargin', 0);
  const drainSeconds = opt('drainSeconds', 60);
  const missStep = opt('missStep', 1.15);
  const missMax = opt('missMax', 3);
  const missHalfLifeSeconds = opt('missHalfLifeDays', 2) * DAY;
  const coldMargin = opt('coldMargin', 2);
  const nowWeight = opt('nowWeight', 0.8);
  const bucketSeconds = shape.sloWindowSeconds;
  const loadTail = loadQuantile(shape, opt('loadQuantile', 0.99));
  const size = replicaSizer(shape, opt('waitTail', 2e-5));
  // The floor asks only what the SLO's own steady-state rule needs for the demand already here.
  const sizeNow = replicaSizer(shape);
  const forecaster = new SeasonalForecaster({ bucketSeconds });
  const halfLife = opt('errorHalfLifeDays', 3) * (DAY / bucketSeconds);
  const errors = new ErrorQuantile(halfLife);
  const minSamples = DAY / bucketSeconds;
  // The error by level: a plan of a few requests a minute strays by multiples, a plan near the
  // peak by tens of percent; one margin for both would waste at the peak or miss at the trough.
  const bandEdges = [0.02, 0.05, 0.1, 0.2, 0.4];
  const bandErrors = [0, ...bandEdges].map(() => new ErrorQuantile(halfLife));
  const minBandSamples = opt('minBandSamples', 100);
  const band = (plan: number): number => {
    const r = plan / Math.max(1e-9, forecaster.peakRate);
    let i = 0;
    while (i < bandEdges.length && r >= (bandEdges[i] as number)) i++;
    return i;
  };
  const rates = new BucketRates(bucketSeconds);
  /** The plan (requests/s) counted against each coming window: the last one made a lead before it began. */
  const plans = new Map<number, { plan: number; band: number }>();
  const recentArrivals = [0, 0];
  const recentSeconds = [0, 0];
  let recentIndex = 0;
  const held: { until: number; replicas: number }[] = [];
  let feedback = 1;
  let lastMissWindow = -1;
  let lastNow = Number.NEGATIVE_INFINITY;
  let firstNow: number | null = null;
  const whole: ReplicaDecision = { replicas: shape.maxReplicas, keepGpus: shape.maxReplicas * shape.gpusPerReplica, urgent: false, reason: 'tide: learning the service (whole pool)' };

  const onBucket = (bucket: number, rate: number): void => {
    const made = plans.get(bucket);
    if (made !== undefined) {
      const k = forecaster.pseudoRate();
      const ratio = (rate + k) / (made.plan + k);
      errors.add(ratio);
      (bandErrors[made.band] as ErrorQuantile).add(ratio);
      plans.delete(bucket);
    }
    forecaster.observe(bucket, rate);
  };

  return {
    name: 'tide',
    decide(o: ServiceObservation): ReplicaDecision {
      rates.add(o, onBucket);
      recentArrivals[recentIndex] = o.arrivals;
      recentSeconds[recentIndex] = o.intervalSeconds;
      recentIndex = (recentIndex + 1) % recentArrivals.length;
      const seconds = (recentSeconds[0] as number) + (recentSeconds[1] as number);
      const rateNow = seconds > 0 ? ((recentArrivals[0] as number) + (recentArrivals[1] as number)) / seconds : 0;
      if (lastNow > Number.NEGATIVE_INFINITY) feedback = 1 + (feedback - 1) * Math.pow(0.5, Math.max(0, o.now - lastNow) / missHalfLifeSeconds);
      lastNow = o.now;
      const closedWindow = Math.floor(o.now / bucketSeconds) - 1;
      if (o.sloMissed && closedWindow !== lastMissWindow) {
        lastMissWindow = closedWindow;
        feedback = Math.min(missMax, feedback * missStep);
      }
      firstNow ??= o.now - o.intervalSeconds;
      if (o.now - firstNow < learnSeconds) return whole;

      const lead = shape.evictSeconds + o.intervalSeconds + loadTail;
      let forecast = 0;
      const last = Math.floor((o.now + lead + aheadSeconds) / bucketSeconds);
      for (let b = Math.floor(o.now / bucketSeconds); b <= last; b++) forecast = Math.max(forecast, forecaster.predict(b));
      const plan = Math.max(forecast, nowWeight * rateNow);
      const planBand = band(plan);
      plans.set(Math.ceil((o.now + lead) / bucketSeconds), { plan, band: planBand });
      const own = bandErrors[planBand] as ErrorQuantile;
      const tracked = own.samples >= minBandSamples ? own : errors;
      const margin = (errors.samples >= minSamples ? Math.max(1, tracked.quantile(quantile)) : coldMargin) * feedback;
      const backlog = o.queueLength / drainSeconds;
      const target = plan * margin + backlog;
      const floor = sizeNow(rateNow * (1 + floorMargin) + backlog);
      const wanted = Math.max(size(target), floor);
      while (held.length > 0 && (held[0] as { until: number }).until <= o.now) held.shift();
      let replicas = wanted;
      for (const h of held) replicas = Math.max(replicas, h.replicas);
      held.push({ until: o.now + holdSeconds, replicas: wanted });
      const running = o.ready + o.loading;
      const urgent = floor > running;
      return {
        replicas,
        keepGpus: replicas * shape.gpusPerReplica,
        urgent,
        reason: urgent ? `tide: demand ${rateNow.toFixed(2)}/s outran the forecast (${forecast.toFixed(2)}/s): reclaim now` : `tide: forecast ${forecast.toFixed(2)}/s × margin ${margin.toFixed(2)}`,
        plannedRate: target,
      };
    },
  };
};
