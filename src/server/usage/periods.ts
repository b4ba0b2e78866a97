/**
 * Budget periods and report windows in the cluster's local time (the energy config's
 * `utcOffsetHours`, as the tariff's hours are): a day starts at local midnight, a week on Monday,
 * a month on its first day; `total` is all time. Pure.
 */
import type { BudgetPeriod } from '../../store/usage.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The period containing `now` (ms): [from, to). `total`: [0, +∞). */
export function periodWindow(period: BudgetPeriod, now: number, utcOffsetHours: number): { from: number; to: number } {
  if (period === 'total') return { from: 0, to: Number.POSITIVE_INFINITY };
  const offset = utcOffsetHours * HOUR;
  const local = new Date(now + offset);
  const y = local.getUTCFullYear();
  const m = local.getUTCMonth();
  const d = local.getUTCDate();
  if (period === 'day') {
    const from = Date.UTC(y, m, d) - offset;
    return { from, to: from + DAY };
  }
  if (period === 'week') {
    const sinceMonday = (local.getUTCDay() + 6) % 7;
    const from = Date.UTC(y, m, d - sinceMonday) - offset;
    return { from, to: from + 7 * DAY };
  }
  return { from: Date.UTC(y, m, 1) - offset, to: Date.UTC(y, m + 1, 1) - offset };
}

const WHEN = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?(Z|[+-]\d{2}:\d{2})?$/;

/**
 * A time in a query or flag: ms since the epoch, or an ISO date or date-time; one without a zone
 * is in the cluster's local time (utcOffsetHours). Null when it is neither.
 */
export function parseWhen(text: string, utcOffsetHours: number): number | null {
  if (/^\d{1,15}$/.test(text)) return Number(text);
  const m = WHEN.exec(text);
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', s = '0', ms = '0', zone] = m;
  const month = Number(mo) - 1;
  const utc = Date.UTC(Number(y), month, Number(d), Number(h), Number(mi), Number(s), Number(ms.padEnd(3, '0')));
  const back = new Date(utc);
  // 2026-02-30 or 25:00 are not times.
  if (back.getUTCMonth() !== month || back.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return null;
  let offsetMin = utcOffsetHours * 60;
  if (zone === 'Z') offsetMin = 0;
  else if (zone !== undefined) offsetMin = (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  return utc - offsetMin * 60_000;
}

/** A local time for messages: "2027-01-01 00:00 UTC+8". */
export function localText(ms: number, utcOffsetHours: number): string {
  const t = new Date(ms + utcOffsetHours * HOUR).toISOString();
  const sign = utcOffsetHours < 0 ? '-' : '+';
  return `${t.slice(0, 10)} ${t.slice(11, 16)} UTC${utcOffsetHours === 0 ? '' : `${sign}${Math.abs(utcOffsetHours)}`}`;
}
