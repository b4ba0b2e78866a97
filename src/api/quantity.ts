/**
 * Kubernetes-style resource quantities: CPU as cores or milli-cores ("4", "500m", 2.5) and
 * memory as bytes with SI or binary suffixes ("64Gi", "512M", 1073741824).
 * Each parser returns the value or a message saying what is wrong.
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50 };
const DECIMAL: Record<string, number> = { k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15 };
const QUANTITY = /^([0-9]+(?:\.[0-9]+)?)([A-Za-z]{0,2})$/;

/** CPU in milli-cores. */
export function parseCpu(v: unknown): Parsed<number> {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) return { ok: false, message: `must be a non-negative number of cores, got ${v}` };
    return bounded(Math.ceil(v * 1000), v);
  }
  if (typeof v !== 'string') return { ok: false, message: 'must be a number of cores or a quantity like "500m"' };
  const m = QUANTITY.exec(v.trim());
  if (!m || (m[2] !== '' && m[2] !== 'm')) return { ok: false, message: `not a CPU quantity: ${JSON.stringify(v)} (use e.g. 4 or "500m")` };
  const n = Number(m[1]);
  return bounded(m[2] === 'm' ? Math.ceil(n) : Math.ceil(n * 1000), v);
}

/** Memory in MiB (rounded up). */
export function parseMemory(v: unknown): Parsed<number> {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) return { ok: false, message: `must be a non-negative number of bytes, got ${v}` };
    return bounded(Math.ceil(v / 2 ** 20), v);
  }
  if (typeof v !== 'string') return { ok: false, message: 'must be a quantity like "64Gi" or a number of bytes' };
  const m = QUANTITY.exec(v.trim());
  const unit = m?.[2] ?? '';
  const factor = unit === '' ? 1 : (BINARY[unit] ?? DECIMAL[unit]);
  if (!m || factor === undefined) return { ok: false, message: `not a memory quantity: ${JSON.stringify(v)} (use e.g. "64Gi", "512Mi", "1G")` };
  return bounded(Math.ceil((Number(m[1]) * factor) / 2 ** 20), v);
}

/** A parsed amount that is stored and summed exactly: a safe integer, or refused as too large. */
function bounded(value: number, input: unknown): Parsed<number> {
  if (!Number.isSafeInteger(value)) return { ok: false, message: `${JSON.stringify(input).slice(0, 40)} is too large` };
  return { ok: true, value: value + 0 }; // + 0: no -0
}

/** Formats MiB back as a short quantity ("64Gi", "512Mi"). */
export function formatMemory(mib: number): string {
  if (mib >= 1024 && mib % 1024 === 0) return `${mib / 1024}Gi`;
  return `${mib}Mi`;
}

/** Formats milli-cores as cores ("4", "0.5"). */
export function formatCpu(milli: number): string {
  return String(milli / 1000);
}
