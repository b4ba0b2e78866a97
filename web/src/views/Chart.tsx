/** A uPlot time series (x: ms since epoch) sized to its container. */
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartSeries {
  readonly label: string;
  readonly color: string;
  readonly values: readonly (number | null)[];
}

export function TimeChart({ title, x, series, unit }: { title: string; x: readonly number[]; series: readonly ChartSeries[]; unit: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => s.label).join('|');
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const opts: uPlot.Options = {
      width: Math.max(240, el.clientWidth),
      height: 180,
      legend: { show: true },
      axes: [{}, { label: unit, size: 50 }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2 }))],
    };
    plot.current = new uPlot(opts, [[], ...series.map(() => [])] as unknown as uPlot.AlignedData, el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(240, el.clientWidth), height: 180 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // the chart is rebuilt only when its series change
  }, [shape, unit]);
  useEffect(() => {
    plot.current?.setData([x.map((t) => t / 1000), ...series.map((s) => s.values)] as unknown as uPlot.AlignedData);
  }, [x, series]);
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} role="img" aria-label={`${title}: ${series.map((s) => `${s.label} ${s.values.at(-1) ?? '—'} ${unit}`).join(', ')}`} />
    </figure>
  );
}
