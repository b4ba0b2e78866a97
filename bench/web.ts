/**
 * `npm run bench:web`: the dashboard with 5,000 jobs and 1,000 GPUs (125 nodes × 8), in real
 * headless Chromium against a real server (in-process, in-memory store). Prints:
 *  - first render: from navigation to the jobs table, and to the full GPU grid (1,000 cells);
 *  - update: from a live message's arrival to the list (a job cancelled) or the grid (a node's
 *    telemetry) redrawn with it, the median of several;
 *  - the built assets' size, gzipped.
 * Targets: first render < 1 s, update < 100 ms, assets < 500 KB gzipped. Exits 1 when one is missed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parseJobSpec } from '../src/api/spec.ts';
import { httpCall, memoryServer } from '../src/server/testing.ts';
import { launch } from '../test/web/browser.ts';

const NODES = 125;
const JOBS = 5000;
const ROOT = join(import.meta.dirname, '..');

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const server = await memoryServer({ adminToken: 'bench-admin', agentToken: 'bench-agent', tickMs: 3_600_000, nodeLeaseMs: 3_600_000, tenants: { t1: ['bench-t1'], t2: ['bench-t2'] } });
const nodeTokens: string[] = [];
for (let n = 0; n < NODES; n++) {
  const r = await httpCall(server.url, 'POST', '/v1/agent/register', 'bench-agent', { id: `node-${n}`, address: 'http://127.0.0.1:9', cpuMilli: 256_000, memoryMib: 2_048_000, simulated: true, gpus: Array.from({ length: 8 }, (_, i) => ({ index: i, model: n % 5 === 0 ? 'A100' : 'H100', memoryMib: 81_920, uuid: `GPU-${n}-${i}` })) });
  nodeTokens.push(r.json.nodeToken);
}
const now = Date.now();
for (let i = 0; i < JOBS; i++) {
  const parsed = parseJobSpec({ name: `job-${i}`, kind: (['training', 'batch', 'inference'] as const)[i % 3], tasks: [{ gpus: 1 + (i % 4), command: 'sleep 1' }] });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  await server.store.submit(i % 2 ? 't1' : 't2', parsed.spec, null, now, () => {});
}
// One scheduling pass: the grid shows GPUs in use.
server.loop.poke();
for (let i = 0; i < 400; i++) {
  if ((await httpCall(server.url, 'GET', '/v1/jobs?state=admitted&limit=1', 'bench-admin')).json.jobs.length > 0) break;
  await new Promise((r) => setTimeout(r, 50));
}

const browser = await launch();
// bypassCSP: waitForFunction evaluates its string predicates, which the page's CSP forbids.
const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 }, bypassCSP: true })).newPage();
// The page's code is given as strings: this file is type-checked without the DOM's types.
await page.addInitScript("localStorage.setItem('tide.token', 'bench-admin')");
const num = async (expr: string): Promise<number> => Number(await page.evaluate(expr));
/**
 * ms from navigation start until the view's first rows or cells were put in the page, as the app
 * stamps it (window.__tide.*RenderedAt, in a layout effect: before the paint). Read in the page,
 * so the harness's own latency (a loaded machine answers the DevTools protocol slowly) is not in it.
 */
async function firstRender(hash: string, selector: string, count: number, stamp: string): Promise<number> {
  await page.goto('about:blank'); // a new document each time (a hash change alone would not load one)
  await page.goto(`${server.url}/${hash}`);
  await page.waitForFunction(`document.querySelectorAll(${JSON.stringify(selector)}).length >= ${count}`, undefined, { polling: 'raf', timeout: 30_000 });
  const at = await num(`window.__tide?.${stamp} ?? NaN`);
  if (process.env['BENCH_WEB_TRACE']) {
    console.log(hash, at.toFixed(0), await page.evaluate(`JSON.stringify([...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')].map((e) => [e.name.replace(location.origin, ''), Math.round(e.startTime), Math.round(e.responseEnd)]))`));
  }
  return at;
}
const jobsFirst: number[] = [];
const gridFirst: number[] = [];
for (let i = 0; i < 3; i++) {
  jobsFirst.push(await firstRender('#/jobs', '[data-testid="jobs-table"] tbody tr', 50, 'jobsRenderedAt'));
  gridFirst.push(await firstRender('#/cluster', '[data-gpu]', NODES * 8, 'gridRenderedAt'));
}

// Updates of the list: cancel jobs on its first page, one at a time.
await page.goto('about:blank');
await page.goto(`${server.url}/#/jobs`);
await page.locator('[data-testid="jobs-table"]').waitFor();
const listUpdates: number[] = [];
const shown: string[] = await page.locator('tr[data-job]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-job') ?? ''));
for (const id of shown.slice(0, 7)) {
  const before = await num('window.__tide?.updates ?? 0');
  await httpCall(server.url, 'POST', `/v1/jobs/${id}/cancel`, 'bench-admin');
  await page.locator(`tr[data-job="${id}"] .s-cancelled`).waitFor();
  await page.waitForFunction(`(window.__tide?.updates ?? 0) > ${before}`);
  listUpdates.push(await num('window.__tide?.lastUpdateMs ?? NaN'));
}

// Updates of the grid: a node reports new telemetry (a heartbeat), the stream pushes the nodes.
await page.goto('about:blank');
await page.goto(`${server.url}/#/cluster`);
await page.waitForFunction(`document.querySelectorAll('[data-gpu]').length >= ${NODES * 8}`);
const gridUpdates: number[] = [];
for (let k = 0; k < 7; k++) {
  await page.evaluate('window.__tide && (window.__tide.lastGridUpdateMs = undefined)');
  const telemetry = Array.from({ length: 8 }, (_, i) => ({ index: i, utilization: (k * 13 + i) % 100, memoryUsedMib: 1000 * k, powerWatts: 100 + k }));
  await httpCall(server.url, 'POST', '/v1/agent/heartbeat', nodeTokens[k] ?? '', { node: `node-${k}`, reports: [], telemetry });
  await page.waitForFunction('window.__tide?.lastGridUpdateMs !== undefined', undefined, { timeout: 10_000 });
  gridUpdates.push(await num('window.__tide?.lastGridUpdateMs ?? NaN'));
}
await browser.close();
await server.close();

const assets = join(ROOT, 'dist-web', 'assets');
const gz = readdirSync(assets).reduce((a, f) => a + gzipSync(readFileSync(join(assets, f)), { level: 9 }).length, 0);
const rows: [string, number, number, string][] = [
  ['first render: jobs list (5,000 jobs), ms', median(jobsFirst), 1000, jobsFirst.map((x) => x.toFixed(0)).join(' ')],
  ['first render: GPU grid (1,000 GPUs), ms', median(gridFirst), 1000, gridFirst.map((x) => x.toFixed(0)).join(' ')],
  ['update: job list row, ms', median(listUpdates), 100, listUpdates.map((x) => x.toFixed(1)).join(' ')],
  ['update: GPU grid, ms', median(gridUpdates), 100, gridUpdates.map((x) => x.toFixed(1)).join(' ')],
  ['static assets gzipped, KB', gz / 1024, 500, ''],
];
let missed = false;
for (const [what, value, target, all] of rows) {
  const ok = value < target;
  missed ||= !ok;
  console.log(`${what.padEnd(44)} ${value.toFixed(1).padStart(8)}  (target < ${target}) ${ok ? 'ok' : 'MISSED'}${all ? `  [${all}]` : ''}`);
}
process.exit(missed ? 1 : 0);
