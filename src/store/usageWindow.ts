/**
 * Which rollups answer a usage report's window (docs/energy.md, "Speed"): the part of [from, to)
 * before the rollups' watermark is tiled, left to right, by at most one partial hour, whole local
 * hours up to the first local midnight, whole local days, whole hours after the last midnight and
 * at most one partial hour. Whole days are read from usage_days, whole hours from usage_hours, and
 * a partial hour from the hour's covering records (pro rata) plus the records that started or
 * ended within it. Pure: the tiling is tested on its own.
 */
import { DAY, HOUR, localDay, localHour } from './usageRollup.ts';

/** [from, to), ms since the epoch. */
export interface Span {
  readonly from: number;
  readonly to: number;
}

/** A part of one local hour: [from, to) inside [hour, hour + 1 h). */
export interface HourPart extends Span {
  readonly hour: number;
}

export interface WindowPlan {
  /** Whole local days, or null. */
  readonly days: Span | null;
  /** Runs of whole local hours (at most two: before the first day, after the last). */
  readonly hours: readonly Span[];
  /** Partial hours at the edges (at most two). */
  readonly edges: readonly HourPart[];
}

const ceilTo = (t: number, floor: (t: number) => number, size: number): number => {
  const f = floor(t);
  return f === t ? t : f + size;
};

/**
 * Tiles [from, min(to, through)) — the part of the window the rollups hold; `through` is the
 * watermark (a local hour: records finished before it are rolled up) and offsetMs the local
 * time's offset the hours and days were cut with.
 */
export function planWindow(from: number, to: number, through: number, offsetMs: number): WindowPlan {
  const end = Math.min(to, through);
  if (from >= end) return { days: null, hours: [], edges: [] };
  const hour = (t: number): number => localHour(t, offsetMs);
  const first = ceilTo(from, hour, HOUR);
  const last = hour(end);
  if (first > last) return { days: null, hours: [], edges: [{ hour: hour(from), from, to: end }] };
  const edges: HourPart[] = [];
  if (from < first) edges.push({ hour: first - HOUR, from, to: first });
  if (last < end) edges.push({ hour: last, from: last, to: end });
  if (first === last) return { days: null, hours: [], edges };
  const dayFrom = ceilTo(first, (t) => localDay(t, offsetMs), DAY);
  const dayTo = localDay(last, offsetMs);
  if (dayFrom >= dayTo) return { days: null, hours: [{ from: first, to: last }], edges };
  const hours: Span[] = [];
  if (first < dayFrom) hours.push({ from: first, to: dayFrom });
  if (dayTo < last) hours.push({ from: dayTo, to: last });
  return { days: { from: dayFrom, to: dayTo }, hours, edges };
}
