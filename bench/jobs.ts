/**
 * `npm run bench:jobs`: simulator speed at the scale, 100,000 synthetic jobs on 10,000
 * GPUs, with the `fifo` (baseline) and `tide` schedulers and every plan checked. Target: under
 * 60 s. Not part of the tests. Arguments: [jobs] [gpus] [policies] [load] (load: the share of
 * the cluster's capacity the arrivals ask for, default 0.8; above 1 the queue grows without end).
 */
import { getJobScheduler, jobSchedulerNames } from '../src/core/scheduling/policies/index.ts';
import { printSimSpeed, TARGET } from './simSpeed.ts';

const jobs = Number(process.argv[2] ?? TARGET.jobs);
const gpus = Number(process.argv[3] ?? TARGET.gpus);
const policies = (process.argv[4] ?? 'fifo,tide').split(',');
const load = process.argv[5] === undefined ? undefined : Number(process.argv[5]);
const unknown = policies.find((p) => !getJobScheduler(p));
if (!(jobs > 0 && gpus > 0 && (load === undefined || load > 0)) || unknown !== undefined) {
  if (unknown !== undefined) console.error(`unknown policy '${unknown}' (known: ${jobSchedulerNames().join(', ')})`);
  console.error('usage: npm run bench:jobs -- [jobs > 0] [gpus > 0] [policies, comma-separated] [load > 0]');
  process.exit(2);
}
await printSimSpeed(jobs, gpus, policies, load);
