/**
 * The few numbers a service's controller reads from a replica's Prometheus text exposition
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): for each wanted metric name,
 * the sum of its samples over every label set. Comments, other metrics, timestamps and
 * malformed lines are skipped; NaN and infinite samples are ignored (a replica cannot make the
 * autoscaler see an infinite rate).
 */

/** Sums of the samples of `names` in `text`; a name with no valid sample is absent. */
export function readMetrics(text: string, names: readonly string[]): Map<string, number> {
  const wanted = new Set(names);
  const out = new Map<string, number>();
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(?:\s+-?\d+)?$/.exec(line);
    if (!m || !wanted.has(m[1] as string)) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    out.set(m[1] as string, (out.get(m[1] as string) ?? 0) + value);
  }
  return out;
}
