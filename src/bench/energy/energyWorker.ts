/** Worker thread of `tide bench energy`: runs (workload, seed, profile) jobs. */
import { parentPort, workerData } from 'node:worker_threads';
import { readThroughputs } from '../../sim/gavelWorkload.ts';
import { readCurve } from './energyWorkloads.ts';
import { runEnergySeed, type EnergyRunSpec } from './energyProtocol.ts';

const { throughputs, curve } = (workerData as { init: { throughputs: string; curve: string } }).init;
const files = { throughputs: readThroughputs(throughputs), curve: readCurve(curve) };

parentPort?.on('message', ({ index, job }: { index: number; job: EnergyRunSpec }) => {
  runEnergySeed(job, files).then(
    (result) => parentPort?.postMessage({ index, result }),
    (e: unknown) => parentPort?.postMessage({ index, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
  );
});
