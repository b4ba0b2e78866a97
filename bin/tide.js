#!/usr/bin/env node
// Entry point of the `tide` command. It runs the compiled CLI in dist/ (built by `npm run build`,
// which `npm ci` and `npm test` run) when dist/ is at least as new as every file under src/,
// so that a command starts in about node's own time; otherwise it runs the TypeScript sources
// through tsx (1-2 s a start), so an edit is never shadowed by an old build. `tide bench` always
// runs the sources (its worker threads load TypeScript modules), as does TIDE_FROM_SOURCES=1.
// The freshness check stats src/ (about 100 entries: 2-10 ms on a loaded 2-core machine).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Whether dist/ was built after the last change under src/ (dist/.stamp holds the build's start). */
function distIsFresh() {
  let built;
  try {
    built = statSync(join(root, 'dist', '.stamp')).mtimeMs;
  } catch {
    return false;
  }
  const src = join(root, 'src');
  let entries;
  try {
    if (statSync(src).mtimeMs > built) return false;
    entries = readdirSync(src, { recursive: true });
  } catch {
    return true; // an install without the sources
  }
  // Directories too: a file added, removed or renamed changes its directory's mtime. Tests are not in the build.
  for (const entry of entries) {
    if (!entry.endsWith('.test.ts') && statSync(join(src, entry)).mtimeMs > built) return false;
  }
  return true;
}

if (process.argv[2] !== 'bench' && process.env.TIDE_FROM_SOURCES !== '1' && distIsFresh()) {
  await import('../dist/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
