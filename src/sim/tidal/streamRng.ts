/**
 * Fast seeded random streams for the tidal simulator (millions of draws per run): sfc32, a
 * small-state generator that passes PractRand, seeded through splitmix32 from (seed, stream)
 * so that arrivals, service times, load times and curve noise each have their own stream and
 * one policy's choices never shift another stream's draws (common random numbers: every policy
 * sees the same requests).
 */

function splitmix32(x: number): () => number {
  let s = x >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class StreamRng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare = NaN;

  constructor(seed: number, stream: number) {
    if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(stream)) throw new RangeError(`StreamRng: seed and stream must be integers, got ${seed}, ${stream}`);
    const mix = splitmix32(Math.imul(seed ^ (Math.floor(seed / 2 ** 32) * 0x27d4eb2d), 0x9e3779b1) ^ Math.imul(stream + 1, 0x7feb352d));
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix();
    for (let i = 0; i < 15; i++) this.next();
  }

  /** Uniform in [0, 1). */
  next(): number {
    const t0 = (this.a + this.b) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.d = (this.d + 1) | 0;
    const t = (t0 + this.d) | 0;
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  /** Exponential with the given mean. */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }

  /** Standard normal (Box–Muller, the second value kept for the next call). */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const v = this.spare;
      this.spare = NaN;
      return v;
    }
    const u = 1 - this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Log-normal: exp(mu + sigma · N(0, 1)). */
  logNormal(mu: number, sigma: number): number {
    return Math.exp(mu + sigma * this.normal());
  }
}

/** The streams of one run; fixed numbers so a stream means the same thing in every run. */
export const STREAM = { curve: 1, arrivals: 2, service: 3, load: 4, synthetic: 5 } as const;
