// Starts a TypeScript worker module: registers tsx's loader in this thread, then imports the entry.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
