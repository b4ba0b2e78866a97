/**
 * When a cache entry read at `now` counts as read, so that it is kept for 75-100 % of `ttlMs`:
 * entries first read together (1,250 agents' tokens when they register at once, the run info
 * of the jobs a fill started together) are then not all read again in the same second. Entries
 * read at one moment (one heartbeat's) keep one lifetime: the spread is a hash of that moment,
 * not a random draw, so a test sees the same lifetimes every time.
 */
export function spreadReadAt(now: number, ttlMs: number): number {
  const fraction = (Math.imul(now | 0, 2654435761) >>> 0) / 2 ** 32;
  return now - fraction * 0.25 * ttlMs;
}
