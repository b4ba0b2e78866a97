/**
 * Turns an autoscaler's observations (arrivals over the last interval) into mean rates per
 * fixed bucket of the clock (5 minutes in the tidal benchmark). An interval that straddles a
 * bucket boundary is split in proportion to time; a bucket is emitted once time has passed its
 * end, with the rate over the part of it that was observed.
 */
import type { ServiceObservation } from './autoscaler.ts';

export class BucketRates {
  private bucket = -1;
  private count = 0;
  private covered = 0;

  constructor(readonly bucketSeconds: number) {
    if (!(bucketSeconds > 0)) throw new RangeError(`bucketSeconds must be > 0, got ${bucketSeconds}`);
  }

  /** Adds an observation; calls `emit(bucket, rate)` for every bucket it completes, in order. */
  add(o: Pick<ServiceObservation, 'now' | 'arrivals' | 'intervalSeconds'>, emit: (bucket: number, rate: number) => void): void {
    const size = this.bucketSeconds;
    const end = o.now;
    let t = end - Math.max(0, o.intervalSeconds);
    const perSecond = o.intervalSeconds > 0 ? o.arrivals / o.intervalSeconds : 0;
    if (o.intervalSeconds <= 0) t = end;
    while (t < end) {
      const b = Math.floor(t / size);
      if (b !== this.bucket) this.flush(emit, b);
      const stop = Math.min(end, (b + 1) * size);
      this.count += perSecond * (stop - t);
      this.covered += stop - t;
      t = stop;
    }
    // A bucket whose end has been reached is complete.
    if (this.bucket >= 0 && end >= (this.bucket + 1) * size) this.flush(emit, Math.floor(end / size));
  }

  private flush(emit: (bucket: number, rate: number) => void, next: number): void {
    if (this.bucket >= 0 && this.covered > 0) emit(this.bucket, this.count / this.covered);
    this.bucket = next;
    this.count = 0;
    this.covered = 0;
  }
}
