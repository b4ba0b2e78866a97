/**
 * A service's arrival-rate forecaster, learned from its own past only: a daily and a weekly
 * seasonal profile per 5-minute bucket (each an exponentially weighted mean over the days or
 * weeks seen), blended by how well each has predicted lately, and scaled by the level of the
 * last half hour against what the profile expected for it (a busy day runs above its profile,
 * a holiday below). Before a bucket of the day has been seen once it falls back on the recent
 * mean (persistence).
 *
 * It forecasts a mean rate; how far the truth strays from it is tracked by the caller
 * (`ErrorQuantile`), which sets the margin.
 */

export interface ForecasterOptions {
  /** Length of a bucket (s); the profiles hold one value per bucket of the day and of the week. */
  readonly bucketSeconds?: number;
  /** Weight of the newest day in the daily profile (0–1]. */
  readonly dayAlpha?: number;
  /** Weight of the newest week in the weekly profile (0–1]. */
  readonly weekAlpha?: number;
  /** Buckets over which the recent level is measured. */
  readonly levelBuckets?: number;
}

const DAY = 86_400;
const WEEK = 7 * DAY;

export class SeasonalForecaster {
  readonly bucketSeconds: number;
  private readonly perDay: number;
  private readonly perWeek: number;
  private readonly dayAlpha: number;
  private readonly weekAlpha: number;
  private readonly levelBuckets: number;
  private readonly day: Float64Array;
  private readonly daySeen: Uint8Array;
  private readonly week: Float64Array;
  private readonly weekSeen: Uint8Array;
  /** Exponentially weighted squared log errors of each profile alone. */
  private dayError = 0;
  private weekError = 0;
  private errorsSeen = 0;
  /** Ring of the last `levelBuckets` observations and what the profile expected for them. */
  private readonly recentActual: Float64Array;
  private readonly recentExpected: Float64Array;
  private recentCount = 0;
  private lastBucket = -1;
  private peak = 0;
  private observed = 0;

  constructor(options: ForecasterOptions = {}) {
    this.bucketSeconds = options.bucketSeconds ?? 300;
    if (!(this.bucketSeconds > 0) || DAY % this.bucketSeconds !== 0) throw new RangeError(`bucketSeconds must divide a day, got ${this.bucketSeconds}`);
    this.perDay = DAY / this.bucketSeconds;
    this.perWeek = WEEK / this.bucketSeconds;
    this.dayAlpha = options.dayAlpha ?? 0.3;
    this.weekAlpha = options.weekAlpha ?? 0.5;
    this.levelBuckets = Math.max(1, options.levelBuckets ?? 6);
    this.day = new Float64Array(this.perDay);
    this.daySeen = new Uint8Array(this.perDay);
    this.week = new Float64Array(this.perWeek);
    this.weekSeen = new Uint8Array(this.perWeek);
    this.recentActual = new Float64Array(this.levelBuckets);
    this.recentExpected = new Float64Array(this.levelBuckets);
  }

  /** Buckets observed so far. */
  get observedBuckets(): number {
    return this.observed;
  }

  /** The highest bucket rate observed (requests/s): the scale for pseudo-counts. */
  get peakRate(): number {
    return this.peak;
  }

  /** A small rate, relative to the service's own scale, that keeps ratios of near-zero rates tame. */
  pseudoRate(): number {
    return Math.max(1e-6, 0.05 * this.peak);
  }

  /**
   * Records the mean rate (requests/s) of bucket `bucket` (time / bucketSeconds, from the
   * caller's clock). Buckets come in increasing order; a skipped bucket stays unobserved.
   */
  observe(bucket: number, rate: number): void {
    if (!Number.isInteger(bucket) || bucket <= this.lastBucket) throw new RangeError(`observe: bucket ${bucket} is not after ${this.lastBucket}`);
    if (!(rate >= 0) || !Number.isFinite(rate)) throw new RangeError(`observe: rate ${rate} is not a finite rate ≥ 0`);
    this.lastBucket = bucket;
    this.observed++;
    this.peak = Math.max(this.peak, rate);
    const d = bucket % this.perDay;
    const w = bucket % this.perWeek;
    const k = this.pseudoRate();
    const expected = this.profile(bucket);
    if (this.daySeen[d] && this.weekSeen[w]) {
      const ed = Math.log((rate + k) / ((this.day[d] as number) + k));
      const ew = Math.log((rate + k) / ((this.week[w] as number) + k));
      const a = 0.02;
      this.dayError = this.errorsSeen === 0 ? ed * ed : (1 - a) * this.dayError + a * ed * ed;
      this.weekError = this.errorsSeen === 0 ? ew * ew : (1 - a) * this.weekError + a * ew * ew;
      this.errorsSeen++;
    }
    const slot = this.recentCount % this.levelBuckets;
    this.recentActual[slot] = rate;
    this.recentExpected[slot] = expected ?? rate;
    this.recentCount++;
    this.day[d] = this.daySeen[d] ? (1 - this.dayAlpha) * (this.day[d] as number) + this.dayAlpha * rate : rate;
    this.daySeen[d] = 1;
    this.week[w] = this.weekSeen[w] ? (1 - this.weekAlpha) * (this.week[w] as number) + this.weekAlpha * rate : rate;
    this.weekSeen[w] = 1;
  }

  /** The seasonal profile for `bucket` (daily and weekly blended), or undefined before that bucket of the day was seen. */
  profile(bucket: number): number | undefined {
    const d = bucket % this.perDay;
    if (!this.daySeen[d]) return undefined;
    const day = this.day[d] as number;
    const w = bucket % this.perWeek;
    if (!this.weekSeen[w] || this.errorsSeen < this.perDay) return day;
    // Inverse-error weights: the profile that has predicted better lately counts more.
    const wd = this.weekError + 1e-9;
    const ww = this.dayError + 1e-9;
    return (wd * day + ww * (this.week[w] as number)) / (wd + ww);
  }

  /** The recent level: observed over expected for the last `levelBuckets` buckets (1 when nothing is known). */
  level(): number {
    const n = Math.min(this.recentCount, this.levelBuckets);
    if (n === 0) return 1;
    let actual = 0;
    let expected = 0;
    for (let i = 0; i < n; i++) {
      actual += this.recentActual[i] as number;
      expected += this.recentExpected[i] as number;
    }
    const k = n * this.pseudoRate();
    return Math.min(4, Math.max(0.25, (actual + k) / (expected + k)));
  }

  /** The recent mean rate (the persistence forecast). */
  recentRate(): number {
    const n = Math.min(this.recentCount, this.levelBuckets);
    if (n === 0) return 0;
    let actual = 0;
    for (let i = 0; i < n; i++) actual += this.recentActual[i] as number;
    return actual / n;
  }

  /** Point forecast of the mean rate (requests/s) in `bucket`, from what was observed before it. */
  predict(bucket: number): number {
    const p = this.profile(bucket);
    if (p === undefined) return this.recentRate();
    return p * this.level();
  }
}
