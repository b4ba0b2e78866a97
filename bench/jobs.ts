/**
 * `npm run bench:jobs`: simulator speed at the scale, 100,000 synthetic jobs on 10,000
 * GPUs, with the `fifo` (baseline) and `tide` schedulers and every plan checked. Target: under
 * 60 s. Not part of the tests. Arguments: [jobs] [gpus] [policies].
 */
import { printSimSpeed, TARGET } from './simSpeed.ts';

const jobs = Number(process.argv[2] ?? TARGET.jobs);
const gpus = Number(process.argv[3] ?? TARGET.gpus);
await printSimSpeed(jobs, gpus, (process.argv[4] ?? 'fifo,tide').split(','));
