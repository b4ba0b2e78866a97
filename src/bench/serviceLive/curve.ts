/**
 * A rate curve (one value per bucket, as the tidal simulator builds it: src/sim/tidal/curves.ts)
 * as the CSV `t_seconds,value` that examples/service/loadgen.mjs replays.
 */

/** The curve as CSV text, one row per bucket. */
export function curveCsv(c: { readonly bucketSeconds: number; readonly values: ArrayLike<number> }): string {
  const rows: string[] = [];
  for (let k = 0; k < c.values.length; k++) rows.push(`${k * c.bucketSeconds},${(c.values[k] as number).toFixed(5)}`);
  return `t_seconds,value\n${rows.join('\n')}\n`;
}
