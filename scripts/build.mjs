// Builds dist/: the `tide` CLI as plain JavaScript, so that a command starts in node's time
// rather than tsx's (the sources compiled at every start took 1-2.7 s). esbuild bundles
// src/cli/main.ts as ESM for node with every package but TypeBox external (node_modules are
// loaded as installed) and splits the code: each command group that main.ts loads with import() is its
// own chunk, so `tide jobs` reads the cluster commands and nothing of the server, agent or
// simulator. The SQL migrations are copied beside the chunks (the store reads them from
// `migrations/` next to its own module). dist/.stamp lists the source files the build read and
// has the build's start time as its mtime: bin/tide.js runs dist/ only when none of them is
// newer (else the sources through tsx).
//
// Usage: node scripts/build.mjs [OUTDIR]  (default dist/; tests build into a folder of their
// own, which must lie inside the repository so that the bundle finds node_modules). The build
// is written beside OUTDIR and renamed into place, so a `tide` starting meanwhile never sees
// half a build (it sees the old one, or none and runs the sources).
import { cpSync, mkdirSync, readdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = resolve(root, process.argv[2] ?? 'dist');
const building = `${dist}.building-${process.pid}`;
const started = new Date();

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  // An install without devDependencies: bin/tide.js runs the sources through tsx instead.
  console.error('tide build: esbuild is not installed; skipped (the CLI will run the TypeScript sources)');
  process.exit(0);
}

rmSync(building, { recursive: true, force: true });
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { main: 'src/cli/main.ts' },
  outdir: building,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Packages stay external (loaded as installed), except TypeBox: its ~700 ES modules took about
  // as long to load as the rest of `tide validate`; bundled, only the schema builders Tide uses
  // are read, from one chunk.
  plugins: [{ name: 'externals', setup: (b) => b.onResolve({ filter: /^[^./]/ }, (a) => (a.path === 'typebox' || a.path.startsWith('typebox/') ? undefined : { external: true })) }],
  sourcemap: 'linked',
  logLevel: 'warning',
  metafile: true,
});
mkdirSync(`${building}/migrations`, { recursive: true });
cpSync(`${root}src/store/migrations`, `${building}/migrations`, { recursive: true });
// What the build read: the bundle's inputs (paths relative to the root), the migrations folder
// (a new migration changes its mtime) and its files.
const migrations = readdirSync(`${root}src/store/migrations`).map((f) => `src/store/migrations/${f}`);
// Bundled packages (typebox) are left out: they change only with npm ci, which rebuilds (prepare).
const inputs = [...Object.keys(result.metafile.inputs).filter((f) => !f.startsWith('node_modules/')), 'src/store/migrations', ...migrations];
writeFileSync(`${building}/.stamp`, `${JSON.stringify({ builtAt: started.toISOString(), inputs }, null, 1)}\n`);
utimesSync(`${building}/.stamp`, started, started);
const old = `${dist}.old-${process.pid}`;
try {
  renameSync(dist, old);
} catch {
  // no previous build
}
renameSync(building, dist);
rmSync(old, { recursive: true, force: true });
// The dashboard (dist-web/), with the default build only: tests building the CLI elsewhere skip it.
if (process.argv[2] === undefined) await (await import('./buildWeb.mjs')).buildWeb();
