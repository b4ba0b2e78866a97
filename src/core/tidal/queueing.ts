/**
 * M/M/c queueing (Erlang C): how many servers a Poisson arrival rate needs so that a quantile of
 * the queueing wait stays under a target. Used by the autoscalers and the oracle alike.
 */

/** P(wait > t) in an M/M/c queue with arrival rate `lambda`, service rate `mu` per server, `c` servers (1 when unstable). */
export function waitTailProbability(lambda: number, mu: number, c: number, t: number): number {
  if (lambda <= 0) return 0;
  if (c <= 0) return 1;
  const a = lambda / mu;
  if (a >= c) return 1;
  // Erlang B by recursion (stable for large c), then Erlang C.
  let b = 1;
  for (let k = 1; k <= c; k++) b = (a * b) / (k + a * b);
  const erlangC = (c * b) / (c - a * (1 - b));
  return Math.min(1, erlangC * Math.exp(-(c * mu - lambda) * t));
}

/**
 * The fewest servers (≥ 1) for which P(wait > waitSeconds) ≤ 1 − quantile at arrival rate
 * `lambda` (per second) and mean service time `serviceSeconds`; at most `cap` (returned when
 * even `cap` servers are not enough).
 */
export function serversNeeded(lambda: number, serviceSeconds: number, waitSeconds: number, quantile: number, cap = 1_000_000): number {
  if (lambda <= 0) return 1;
  const mu = 1 / serviceSeconds;
  const allowed = 1 - quantile;
  let c = Math.max(1, Math.floor(lambda / mu));
  while (c < cap && waitTailProbability(lambda, mu, c, waitSeconds) > allowed) c++;
  return Math.min(c, cap);
}
