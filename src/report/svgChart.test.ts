import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lineChartSvg, ticks } from './svgChart.ts';

test('ticks are round numbers covering the range', () => {
  assert.deepEqual(ticks(0, 10), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(ticks(90, 130), [90, 100, 110, 120, 130]);
});

test('a chart has one path per series, escaped names, and the same bytes for the same data', () => {
  const chart = {
    title: 'a <b> & c',
    xLabel: 'x',
    yLabel: 'y',
    series: [
      { name: 'one', points: [[0, 1], [1, 3]] as const },
      { name: 'floor', dashed: true, points: [[0, 0.5], [1, 0.5]] as const },
    ],
  };
  const svg = lineChartSvg(chart);
  assert.equal((svg.match(/<path /g) ?? []).length, 2);
  assert.match(svg, /a &lt;b&gt; &amp; c/);
  assert.match(svg, /stroke-dasharray="6 4"/);
  assert.equal(lineChartSvg(chart), svg);
});
