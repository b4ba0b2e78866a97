// Builds the dashboard (web/, React + Vite) into dist-web/, which `tide server` serves at `/`.
// Run by scripts/build.mjs (so `npm ci`, `npm run build` and `npm test` build it). Skipped when
// dist-web/.stamp is newer than every file under web/ (an unchanged dashboard is not rebuilt),
// and when Vite is not installed (an install without devDependencies: the server then answers
// `/` with a page saying the dashboard was not built).
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'dist-web');
const stamp = join(out, '.stamp');

function newestSource() {
  let newest = statSync(join(root, 'package-lock.json')).mtimeMs;
  for (const e of readdirSync(join(root, 'web'), { recursive: true, withFileTypes: true })) {
    if (e.isFile()) newest = Math.max(newest, statSync(join(e.parentPath ?? e.path, e.name)).mtimeMs);
  }
  return newest;
}

export async function buildWeb({ force = false } = {}) {
  if (!force && existsSync(stamp) && statSync(stamp).mtimeMs >= newestSource()) return 'fresh';
  let vite;
  try {
    vite = await import('vite');
  } catch {
    console.error('tide build: vite is not installed; the dashboard was not built');
    return 'skipped';
  }
  const started = Date.now();
  await vite.build({ configFile: join(root, 'web', 'vite.config.ts'), logLevel: 'warn' });
  writeFileSync(stamp, `${new Date(started).toISOString()}\n`);
  return 'built';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const result = await buildWeb({ force: process.argv.includes('--force') });
  console.error(`tide build: dashboard ${result}`);
}
