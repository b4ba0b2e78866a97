/**
 * `npm run bench:jobs`: simulator speed at the scale, 100,000 synthetic jobs on 10,000
 * GPUs, with the `tide` and `fifo` schedulers and every plan checked. Target: under 60 s.
 * Not part of the tests. Arguments: [jobs] [gpus] [policies].
 */
import { simSpeed, simSpeedLine } from './simSpeed.ts';

const jobs = Number(process.argv[2] ?? 100_000);
const gpus = Number(process.argv[3] ?? 10_000);
for (const policy of (process.argv[4] ?? 'tide,fifo').split(',')) {
  const r = await simSpeed(policy, jobs, gpus);
  // The target is set for the size only.
  const atTarget = jobs >= 100_000 && gpus >= 10_000;
  console.log(atTarget ? `${simSpeedLine(r)} — target < 60 s: ${r.seconds < 60 ? 'met' : 'NOT met'}` : simSpeedLine(r));
}
