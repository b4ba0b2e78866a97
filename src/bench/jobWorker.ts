/** Worker thread of the job benchmark: runs (workload, rate, seed, policy) jobs. */
import { parentPort, workerData } from 'node:worker_threads';
import { readThroughputs } from '../sim/gavelWorkload.ts';
import { runJobSeed, type JobRunSpec } from './jobProtocol.ts';

const { throughputs, phillyDir } = (workerData as { init: { throughputs: string; phillyDir: string } }).init;
const files = { throughputs: readThroughputs(throughputs), phillyDir };

parentPort?.on('message', ({ index, job }: { index: number; job: JobRunSpec }) => {
  runJobSeed(job, files).then(
    (result) => parentPort?.postMessage({ index, result }),
    (e: unknown) => parentPort?.postMessage({ index, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
  );
});
