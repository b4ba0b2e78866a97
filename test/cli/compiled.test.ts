/**
 * The compiled CLI (scripts/build.mjs → dist/): built into a throwaway root beside a copy of
 * bin/tide.js (src/ is a link to the real one), then run as users run it. The cluster commands
 * load none of the server's packages or modules; the bundle runs the server (its migrations
 * found beside the chunks, its scheduler thread's sources beside dist/) and the agent; bin/tide.js runs dist/ only when it is newer than
 * every source file it was built from, and the sources through tsx otherwise.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, freePort, tempDir, waitFor } from '../e2e/harness.ts';

/** Packages a cluster command (jobs, nodes, …) must not load: the server's, the store's, the LP solver's, YAML (submit only), the bench's tables and progress bars. */
const HEAVY = /\/node_modules\/(fastify|@fastify|better-sqlite3|pg|highs|yaml|prom-client|cli-progress|cli-table3)\//;

describe('the compiled CLI', () => {
  // Inside the repository, so that the bundle's bare imports find node_modules.
  mkdirSync(join(ROOT, 'node_modules', '.cache'), { recursive: true });
  const root = mkdtempSync(join(ROOT, 'node_modules', '.cache', 'tide-compiled-'));
  const dist = join(root, 'dist');
  const work = tempDir('compiled');
  const traceHooks = join(root, 'trace.mjs');
  const children: ReturnType<typeof spawn>[] = [];

  before(() => {
    mkdirSync(join(root, 'bin'));
    copyFileSync(join(ROOT, 'bin', 'tide.js'), join(root, 'bin', 'tide.js'));
    symlinkSync(join(ROOT, 'src'), join(root, 'src'));
    const built = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), dist], { encoding: 'utf8' });
    assert.equal(built.status, 0, built.stderr);
    // Records every module URL the process resolves (ESM), one a line, in $TIDE_TRACE.
    writeFileSync(join(root, 'hooks.mjs'), "import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(process.env.TIDE_TRACE, r.url + '\\n'); return r; }\n");
    writeFileSync(traceHooks, "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      await new Promise((r) => c.once('exit', r));
    }
    rmSync(root, { recursive: true, force: true });
  });

  /** Runs node with the module tracer; returns the exit code, output and the URLs it loaded. */
  const traced = (args: string[], env: Record<string, string> = {}) => {
    const trace = join(work, `trace-${Math.random().toString(36).slice(2)}`);
    writeFileSync(trace, '');
    const r = spawnSync(process.execPath, ['--import', traceHooks, ...args], { cwd: work, encoding: 'utf8', env: { ...process.env, TIDE_FROM_SOURCES: '', ...env, TIDE_TRACE: trace } });
    return { code: r.status, out: r.stdout, err: r.stderr, urls: readFileSync(trace, 'utf8').trim().split('\n') };
  };
  const clusterCall = ['jobs', '--server', 'http://127.0.0.1:9', '--token', 'x'];

  test('tide jobs loads only the cluster commands: no fastify, SQLite, pg, highs or YAML, no server chunk', () => {
    const compiled = traced([join(dist, 'main.js'), ...clusterCall]);
    assert.equal(compiled.code, 7, compiled.err); // unreachable: the whole command ran
    const loaded = compiled.urls.filter((u) => u.startsWith('file:'));
    assert.deepEqual(loaded.filter((u) => HEAVY.test(u)), []);
    const chunks = loaded.filter((u) => u.includes('/dist/')).map((u) => u.split('/').pop());
    assert.ok(chunks.some((c) => c?.startsWith('cluster-')), chunks.join(' '));
    assert.deepEqual(chunks.filter((c) => /^(serve|server|agent|sim|bench)/.test(c ?? '')), []);
    // The sources' import graph is as lazy (what tsx runs when dist/ is stale).
    const sources = traced(['--import', import.meta.resolve('tsx'), join(ROOT, 'src', 'cli', 'main.ts'), ...clusterCall]);
    assert.equal(sources.code, 7, sources.err);
    assert.deepEqual(sources.urls.filter((u) => HEAVY.test(u) || /\/src\/(server|store|agent|sim|core|bench|lp)\//.test(u)), []);
    // --version loads no command at all.
    const version = traced([join(dist, 'main.js'), '--version']);
    assert.equal(version.out.trim(), '0.1.0');
    assert.deepEqual(version.urls.filter((u) => /\/dist\/(cluster|serve|server|agent|sim|bench)/.test(u) || HEAVY.test(u)), []);
  });

  test('bin/tide.js runs dist/ when it is newer than every source it lists, the sources through tsx otherwise', () => {
    const stamp = join(dist, '.stamp');
    const listed = JSON.parse(readFileSync(stamp, 'utf8')).inputs as string[];
    assert.ok(listed.includes('src/cli/main.ts') && listed.includes('src/cli/cluster.ts') && listed.includes('src/store/sqlStore.ts'));
    assert.ok(listed.some((f) => /^src\/store\/migrations\/\d+.*\.sql$/.test(f)), 'the migrations');
    const ranDist = (r: { urls: string[] }): boolean => r.urls.some((u) => u.endsWith(`${root}/dist/main.js`));
    const ranSources = (r: { urls: string[] }): boolean => r.urls.some((u) => u.endsWith('/src/cli/main.ts'));
    const bin = (env: Record<string, string> = {}) => traced([join(root, 'bin', 'tide.js'), '--version'], env);
    const at = (ms: number) => utimesSync(stamp, new Date(ms), new Date(ms));
    at(Date.now() + 3_600_000);
    const fresh = bin();
    assert.equal(fresh.out.trim(), '0.1.0');
    assert.ok(ranDist(fresh) && !ranSources(fresh), 'fresh: dist');
    const forced = bin({ TIDE_FROM_SOURCES: '1' });
    assert.ok(ranSources(forced) && !ranDist(forced), 'TIDE_FROM_SOURCES=1: the sources');
    at(1000);
    const stale = bin();
    assert.equal(stale.out.trim(), '0.1.0');
    assert.ok(ranSources(stale) && !ranDist(stale), 'stale: the sources');
    // One listed file (this root's copy of bin, so that no real source is touched) decides alone.
    const binTime = statSync(join(root, 'bin', 'tide.js')).mtimeMs;
    writeFileSync(stamp, JSON.stringify({ inputs: ['bin/tide.js'] }));
    at(binTime - 10_000);
    assert.ok(ranSources(bin()), 'a listed file newer than the build: the sources');
    at(binTime + 10_000);
    assert.ok(ranDist(bin()), 'every listed file older: dist');
    writeFileSync(stamp, JSON.stringify({ inputs: ['bin/tide.js', 'src/cli/gone.ts'] }));
    at(binTime + 10_000);
    assert.ok(ranSources(bin()), 'a listed file gone: the sources');
    rmSync(stamp);
    assert.ok(ranSources(bin()), 'no stamp: the sources');
  });

  test('the bundle runs a server (migrations found beside the chunks) and an agent, and its CLI submits and lists', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const config = join(work, 'cluster.yaml');
    writeFileSync(config, 'adminToken: c-admin-token\nagentToken: c-agent-token\ntenants:\n  - name: c\n    tokens: [c-tenant-token]\n');
    const start = (args: string[]) => {
      const c = spawn(process.execPath, [join(dist, 'main.js'), ...args], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      children.push(c);
      return () => err;
    };
    const serverLog = start(['server', '--port', String(port), '--data-dir', join(work, 'server'), '--config', config, '--tick-ms', '200']);
    await waitFor('the compiled server', async () => ((await fetch(`${url}/healthz`)).ok ? true : undefined), 30_000).catch((e) => {
      throw new Error(`${(e as Error).message}: ${serverLog()}`);
    });
    // The scheduler thread loads its TypeScript sources from beside dist/ (the API answers before it is ready).
    await waitFor('the scheduler thread', async () => (/scheduling on a thread of its own|scheduler thread could not start/.test(serverLog()) ? true : undefined), 30_000);
    assert.doesNotMatch(serverLog(), /scheduler thread could not start/);
    start(['agent', '--server', url, '--token', 'c-agent-token', '--name', 'c-node', '--gpus', '1xH100', '--simulate', '--data-dir', join(work, 'agent'), '--heartbeat-ms', '250']);
    const cli = (args: string[]) => spawnSync(process.execPath, [join(dist, 'main.js'), ...args, '--server', url, '--token', 'c-tenant-token'], { cwd: work, encoding: 'utf8' });
    await waitFor('the compiled agent', async () => (cli(['nodes', '-o', 'json']).stdout.includes('c-node') ? true : undefined));
    const spec = join(work, 'hello.yaml');
    writeFileSync(spec, 'name: hello\ntasks:\n  - gpus: 1\n    command: echo compiled\n');
    const submitted = cli(['submit', spec, '--wait']);
    assert.equal(submitted.status, 0, submitted.stderr);
    assert.match(submitted.stdout, /job 1: succeeded/);
    assert.equal(cli(['logs', '1']).stdout, 'compiled\n');
    assert.match(cli(['jobs', '--all']).stdout, /^JOBID.*\n1\s+hello\s+default\s+c\s+CD/);
  });
});
