#!/usr/bin/env node
// Entry point of the `tide` command. It runs the compiled CLI in dist/ (built by `npm run build`,
// which `npm ci` and `npm test` run) when dist/ is at least as new as every source file it was
// built from, so that a command starts in about node's own time; otherwise it runs the
// TypeScript sources through tsx (1-2 s a start), so an edit is never shadowed by an old build.
// `tide bench` always runs the sources (its worker threads load TypeScript modules), as does
// TIDE_FROM_SOURCES=1. The check stats the ~90 files dist/.stamp lists (no directory walk).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Whether dist/ was built after the last change to its sources (.stamp: their list; its mtime: the build's start). */
function distIsFresh() {
  try {
    const stamp = join(root, 'dist', '.stamp');
    const built = statSync(stamp).mtimeMs;
    const { inputs } = JSON.parse(readFileSync(stamp, 'utf8'));
    return inputs.every((file) => statSync(join(root, file)).mtimeMs <= built);
  } catch {
    return false; // no build, an old stamp, or a source file gone
  }
}

if (process.argv[2] !== 'bench' && process.env.TIDE_FROM_SOURCES !== '1' && distIsFresh()) {
  await import('../dist/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
