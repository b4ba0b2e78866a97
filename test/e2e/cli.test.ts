/** The CLI as a user meets it: one-line errors with meaningful exit codes, never a stack trace. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startServer, type RunningServer } from '../../src/server/server.ts';
import { ROOT, tempDir } from './harness.ts';

describe('CLI errors and exit codes', () => {
  let server: RunningServer;
  const dir = tempDir('cli');
  before(async () => {
    server = await startServer({ dataDir: dir, databaseUrl: 'memory:', port: 0, adminToken: 'cli-admin-token', agentToken: 'cli-agent-token', tickMs: 60_000 });
  });
  after(async () => server.close());

  /** Runs the CLI as a child process (asynchronously: the server under test is in this process). */
  const run = async (args: string[], { token = 'cli-admin-token', url = server.url } = {}) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'tide.js'), ...args, '--server', url, '--token', token], { cwd: dir });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    return { code, out, err };
  };

  test('bad specs, files and flags: exit 2 with one line naming each problem; unknown job: exit 3', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'name: ok\ntasks:\n  - gpus: 1.5\n    memory: 64GB\n');
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'name: [unclosed\n');
    const [invalid, yaml, missing, notFound, format] = await Promise.all([
      run(['submit', bad]),
      run(['submit', broken]),
      run(['submit', join(dir, 'nope.yaml')]),
      run(['job', '424242']),
      run(['jobs', '-o', 'yaml']),
    ]);
    assert.equal(invalid.code, 2);
    assert.equal(invalid.err.trim().split('\n').length, 1);
    assert.match(invalid.err, /tasks\[0\]\.gpus: .*tasks\[0\]\.memory: .*tasks\[0\]\.command/);
    assert.equal(yaml.code, 2);
    assert.match(yaml.err, /broken\.yaml: not valid YAML or JSON/);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /nope\.yaml: cannot read: ENOENT/);
    assert.equal(notFound.code, 3);
    assert.match(notFound.err, /no job 424242/);
    assert.equal(format.code, 2);
    for (const r of [invalid, yaml, missing, notFound, format]) assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
  });

  test('a wrong token exits 4; an unreachable server exits 7; an idempotent resubmission says so', async () => {
    const spec = join(dir, 'ok.json');
    writeFileSync(spec, JSON.stringify({ name: 'ok', tasks: [{ gpus: 1, command: 'true' }] }));
    const [badToken, unreachable, first] = await Promise.all([
      run(['jobs'], { token: 'wrong-token' }),
      run(['jobs'], { url: 'http://127.0.0.1:9' }),
      run(['submit', spec, '--key', 'cli-1']),
    ]);
    assert.equal(badToken.code, 4);
    assert.match(badToken.err, /unknown token/);
    assert.equal(unreachable.code, 7);
    assert.match(unreachable.err, /cannot reach http:\/\/127\.0\.0\.1:9/);
    assert.equal(first.code, 0);
    const again = await run(['submit', spec, '--key', 'cli-1']);
    assert.equal(again.code, 0);
    assert.equal(/job (\d+)/.exec(again.out)?.[1], /job (\d+)/.exec(first.out)?.[1]);
    assert.match(again.out, /^Already submitted job/);
  });
});
