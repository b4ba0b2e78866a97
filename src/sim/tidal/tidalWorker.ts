/** Worker thread of the tidal benchmark: runs (curve, policy, seed) jobs. */
import { parentPort } from 'node:worker_threads';
import { runTidal, type TidalRunSpec } from './protocol.ts';

parentPort?.on('message', ({ index, job }: { index: number; job: TidalRunSpec }) => {
  try {
    parentPort?.postMessage({ index, result: runTidal(job) });
  } catch (e) {
    parentPort?.postMessage({ index, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
