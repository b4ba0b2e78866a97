/**
 * The fuzzers of test/fuzz at full size: `npm run bench:fuzz [-- --cases 100000 --seed N
 * --targets spec,config,… --jobs 2 --max-minutes M]`. Each target runs in its own process (`--jobs` at a time),
 * counts every case that breaks its property (no stop at the first, no shrinking), prints
 * progress, and ends with a table: target, cases, failures, seconds, cases/s. A failure prints
 * the case and the command that replays it; the exit code is 1 when any case failed.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import fc from 'fast-check';
import { TARGETS, type TargetName } from '../test/fuzz/targets.ts';
import { benchArgs, intFlag, usageError } from './args.ts';

interface Progress {
  readonly target: TargetName;
  cases: number;
  failures: number;
  seconds: number;
  done: boolean;
  readonly examples: string[];
}


/** Worker: runs one target, writes JSON lines (progress, then the result) to stdout. */
async function worker(name: TargetName, cases: number, seed: number, maxMs: number): Promise<void> {
  const p: Progress = { target: name, cases: 0, failures: 0, seconds: 0, done: false, examples: [] };
  const start = performance.now();
  let last = start;
  const emit = (): void => {
    p.seconds = (performance.now() - start) / 1000;
    process.stdout.write(`${JSON.stringify(p)}\n`);
  };
  const fail = (what: string, e: unknown): void => {
    p.failures++;
    if (p.examples.length < 5) p.examples.push(`${what}: ${((e as Error)?.message ?? String(e)).slice(0, 600)}`);
  };
  const t = await TARGETS[name]();
  try {
    await fc.assert(
      fc.asyncProperty(t.arbitrary, async (x) => {
        try {
          await t.check(x);
        } catch (e) {
          fail(`case ${p.cases + 1} ${fc.stringify(x).slice(0, 400)}`, e);
        }
        p.cases++;
        if (performance.now() - last > 1000) {
          last = performance.now();
          emit();
        }
        return true;
      }),
      // A time cap ends the run early (not a failure); the table then shows the cases reached.
      { numRuns: cases, seed, ...(maxMs > 0 ? { interruptAfterTimeLimit: maxMs, markInterruptAsFailure: false } : {}) },
    );
    try {
      await t.after?.();
    } catch (e) {
      fail('after the run (health, nothing lost)', e);
    }
  } finally {
    await t.close?.();
  }
  p.done = true;
  emit();
}

async function main(): Promise<void> {
  const { values: f } = benchArgs('bench:fuzz', { cases: { type: 'string' }, seed: { type: 'string' }, targets: { type: 'string' }, worker: { type: 'string' }, 'max-minutes': { type: 'string' }, jobs: { type: 'string' } });
  const cases = intFlag('bench:fuzz', 'cases', f.cases, 100_000);
  const seed = intFlag('bench:fuzz', 'seed', f.seed, Date.now() % 2 ** 31);
  const names = (f.targets ?? Object.keys(TARGETS).join(',')).split(',') as TargetName[];
  const unknown = names.filter((n) => !Object.hasOwn(TARGETS, n));
  if (unknown.length) {
    usageError('bench:fuzz', `--targets: unknown ${unknown.join(', ')} (known: ${Object.keys(TARGETS).join(', ')})`);
  }
  const worker1 = f.worker;
  const maxMinutes = intFlag('bench:fuzz', 'max-minutes', f['max-minutes'], 0);
  if (worker1 !== undefined) return worker(worker1 as TargetName, cases, seed, maxMinutes * 60_000);
  const jobs = Math.max(1, intFlag('bench:fuzz', 'jobs', f.jobs, 1));

  console.log(`fuzzing ${names.join(', ')}: ${cases} cases each${maxMinutes ? ` (at most ${maxMinutes} min each)` : ''}, seed ${seed}, ${jobs} at a time`);
  const state = new Map<TargetName, Progress>(names.map((n) => [n, { target: n, cases: 0, failures: 0, seconds: 0, done: false, examples: [] }]));
  const line = (): string => [...state.values()].map((p) => `${p.target} ${p.cases}/${cases}${p.failures ? ` (${p.failures} failed)` : ''}${p.done ? ' ✓' : ''}`).join(' · ');
  const ticker = setInterval(() => console.log(line()), 5000);
  const self = fileURLToPath(import.meta.url);
  const run = (name: TargetName): Promise<void> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', self, '--worker', name, '--cases', String(cases), '--seed', String(seed), '--max-minutes', String(maxMinutes)], { stdio: ['ignore', 'pipe', 'inherit'] });
      createInterface({ input: child.stdout }).on('line', (l) => {
        try {
          const p = JSON.parse(l) as Progress;
          // Print each failure as it comes (the first five of a target), not only at the end.
          for (const e of p.examples.slice(state.get(name)?.examples.length ?? 0)) console.log(`[${name}] FAILED ${e}`);
          state.set(name, p);
        } catch {
          console.log(`[${name}] ${l}`);
        }
      });
      child.on('close', (code) => {
        const p = state.get(name) as Progress;
        if (!p.done) {
          p.failures++;
          p.examples.push(`the worker exited with code ${code} after ${p.cases} cases`);
        }
        resolve();
      });
    });
  const queue = [...names];
  await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, async () => {
    for (let n = queue.shift(); n !== undefined; n = queue.shift()) await run(n);
  }));
  clearInterval(ticker);

  const table = new Table({ head: ['target', 'cases', 'failures', 'seconds', 'cases/s'] });
  for (const p of state.values()) table.push([p.target, p.cases, p.failures, p.seconds.toFixed(1), p.seconds > 0 ? Math.round(p.cases / p.seconds) : '-']);
  console.log(table.toString());
  let failed = false;
  for (const p of state.values()) {
    if (!p.failures) continue;
    failed = true;
    console.log(`\n${p.target}: ${p.failures} failing case(s); replay with npm run bench:fuzz -- --targets ${p.target} --seed ${seed} --cases N (N: the case number)`);
    for (const e of p.examples) console.log(`  ${e}`);
  }
  console.log(`seed ${seed}`);
  process.exit(failed ? 1 : 0);
}

await main();
