/**
 * A forecaster's error, tracked: a histogram of log(actual / planned) whose old samples fade
 * (a half-life in samples), from which a high quantile gives the multiplicative margin that
 * would have covered all but a (1 − q) share of recent buckets. Constant memory and time.
 */

const LOW = -4; // ratios from e^-4 ≈ 0.018 …
const HIGH = 4; // … to e^4 ≈ 55 (beyond: counted in the end bins)
const WIDTH = 0.005;
const BINS = Math.round((HIGH - LOW) / WIDTH);

export class ErrorQuantile {
  private readonly bins = new Float64Array(BINS);
  private total = 0;
  private count = 0;
  private readonly keep: number;

  /** `halfLife`: samples after which a sample counts half. */
  constructor(halfLife: number) {
    if (!(halfLife > 0)) throw new RangeError(`halfLife must be > 0, got ${halfLife}`);
    this.keep = Math.pow(0.5, 1 / halfLife);
  }

  /** Samples added so far (not decayed). */
  get samples(): number {
    return this.count;
  }

  /** Adds one ratio actual / planned (> 0). */
  add(ratio: number): void {
    if (!(ratio > 0) || !Number.isFinite(ratio)) throw new RangeError(`ratio must be a finite number > 0, got ${ratio}`);
    const bins = this.bins;
    for (let i = 0; i < BINS; i++) bins[i] = (bins[i] as number) * this.keep;
    this.total = this.total * this.keep + 1;
    const x = Math.log(ratio);
    const i = Math.min(BINS - 1, Math.max(0, Math.floor((x - LOW) / WIDTH)));
    bins[i] = (bins[i] as number) + 1;
    this.count++;
  }

  /** The ratio below which a share q of the (weighted) samples lies (upper bin edge); 1 with no samples. */
  quantile(q: number): number {
    if (this.total <= 0) return 1;
    let above = (1 - q) * this.total;
    for (let i = BINS - 1; i >= 0; i--) {
      above -= this.bins[i] as number;
      if (above < 0) return Math.exp(LOW + (i + 1) * WIDTH);
    }
    return Math.exp(LOW + WIDTH);
  }
}
