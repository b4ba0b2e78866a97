/**
 * `npm run bench:jobs`: simulator speed at the scale, 100,000 synthetic jobs on 10,000
 * GPUs, with the `fifo` (baseline) and `tide` schedulers and every plan checked. Target: under
 * 60 s. Not part of the tests.
 *
 *   npm run bench:jobs -- [--jobs 100000] [--gpus 10000] [--policies fifo,tide] [--load 0.8]
 *
 * `--load`: the share of the cluster's capacity the arrivals ask for (default 0.8; above 1 the
 * queue grows without end). The synthetic workload's time limits are declared estimates (a job
 * on a slower model runs past its own), so they are not enforced here. Exits 2 on bad arguments.
 */
import { getJobScheduler, jobSchedulerNames } from '../src/core/scheduling/policies/index.ts';
import { printSimSpeed, TARGET } from './simSpeed.ts';
import { benchArgs } from './args.ts';

const USAGE = 'usage: npm run bench:jobs -- [--jobs N > 0] [--gpus N > 0] [--policies fifo,tide] [--load X > 0]';

function usage(message: string): never {
  console.error(`bench:jobs: ${message}\n${USAGE}`);
  process.exit(2);
}

const { values } = benchArgs('bench:jobs', { jobs: { type: 'string', default: String(TARGET.jobs) }, gpus: { type: 'string', default: String(TARGET.gpus) }, policies: { type: 'string', default: 'fifo,tide' }, load: { type: 'string' } }) as { values: Record<string, string | boolean | undefined> };

/** A positive number from flag `name`, or usage(). */
function positive(name: string, integer: boolean): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) usage(`--${name}: must be ${integer ? 'a whole number' : 'a number'} above 0, got '${String(raw)}'`);
  return n;
}

const jobs = positive('jobs', true) as number;
const gpus = positive('gpus', true) as number;
const load = positive('load', false);
const policies = String(values['policies']).split(',').map((p) => p.trim()).filter((p) => p !== '');
if (policies.length === 0) usage('--policies: empty list');
const unknown = policies.find((p) => !getJobScheduler(p));
if (unknown !== undefined) usage(`--policies: unknown policy '${unknown}' (known: ${jobSchedulerNames().join(', ')})`);
await printSimSpeed(jobs, gpus, policies, load);
