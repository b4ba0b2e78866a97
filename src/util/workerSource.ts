import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * A source file by its path under src/ (e.g. 'server/whatIfWorker.ts'), for a worker thread to
 * load: beside this module when it runs from the sources, from src/ beside dist/ when it runs from
 * the compiled CLI (the bundle has no worker modules of its own; util/workerBoot.mjs registers tsx
 * in the thread and imports the TypeScript entry).
 */
export function sourceUrl(path: string): URL {
  const here = new URL(`../${path}`, import.meta.url);
  return existsSync(fileURLToPath(here)) ? here : new URL(`../src/${path}`, import.meta.url);
}
