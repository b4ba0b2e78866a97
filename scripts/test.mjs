// `npm run test:unit [-- FILE…]`: node's test runner over every *.test.ts under src/ and test/
// (or the files given), with a PostgreSQL for the store conformance and HA suites:
// TIDE_TEST_DATABASE_URL when set (CI sets it), else a throwaway cluster started here where the
// PostgreSQL binaries exist (stopped and removed at the end, also on failure or Ctrl-C). Where
// neither is possible those suites are reported as skipped, with the reason, never dropped.
// Run with `node --import tsx` (the throwaway cluster is TypeScript). The closing `# pass` /
// `# fail` lines and the exit code are node's own.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPostgresBin, startThrowawayPostgres } from '../test/e2e/throwawayPostgres.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function testFiles() {
  const out = [];
  for (const dir of ['src', 'test']) {
    for (const entry of readdirSync(join(root, dir), { recursive: true, withFileTypes: true })) {
      if (entry.isFile() && entry.name.endsWith('.test.ts')) out.push(relative(root, join(entry.parentPath ?? entry.path, entry.name)));
    }
  }
  return out.sort();
}

const files = process.argv.length > 2 ? process.argv.slice(2) : testFiles();
const env = { ...process.env };
let pg = null;
if (env.TIDE_TEST_DATABASE_URL) {
  console.error('tests: PostgreSQL from TIDE_TEST_DATABASE_URL');
} else {
  const found = findPostgresBin();
  if ('missing' in found) {
    env.TIDE_TEST_POSTGRES_SKIP = `${found.missing}, and TIDE_TEST_DATABASE_URL is not set`;
  } else {
    try {
      pg = await startThrowawayPostgres({ bin: found.bin });
      env.TIDE_TEST_DATABASE_URL = pg.url;
      console.error(`tests: a throwaway PostgreSQL (${found.bin}) on 127.0.0.1:${pg.port}, removed at the end`);
    } catch (e) {
      env.TIDE_TEST_POSTGRES_SKIP = `a throwaway PostgreSQL would not start: ${e.message.split('\n')[0]}`;
    }
  }
  if (env.TIDE_TEST_POSTGRES_SKIP) console.error(`tests: PostgreSQL suites will be skipped: ${env.TIDE_TEST_POSTGRES_SKIP}`);
}

const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], { cwd: root, env, stdio: 'inherit' });
// Ctrl-C reaches the runner from the terminal; a TERM or HUP sent to us alone is passed on.
// Either way we wait for the runner to end, then remove the cluster.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (sig !== 'SIGINT') child.kill(sig);
  });
}
child.on('exit', (code, signal) => {
  pg?.stop();
  process.exit(code ?? 128 + (signal === 'SIGINT' ? 2 : 15));
});
