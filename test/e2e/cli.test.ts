/** The CLI as a user meets it: one-line errors with meaningful exit codes, never a stack trace. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startServer, type RunningServer } from '../../src/server/server.ts';
import { Api, ROOT, TENANT, startAgentProcess, startServerProcess, tempDir, waitFor, writeConfig, type Proc, type ServerHandle } from './harness.ts';
import { exitAfterOutput } from '../../src/util/childExit.ts';

describe('CLI errors and exit codes', () => {
  let server: RunningServer;
  const dir = tempDir('cli');
  before(async () => {
    server = await startServer({ dataDir: dir, databaseUrl: 'memory:', port: 0, adminToken: 'cli-admin-token', agentToken: 'cli-agent-token', tickMs: 60_000 });
  });
  after(async () => server.close());

  /** Runs the CLI as a child process (asynchronously: the server under test is in this process); token null: none given. */
  const run = async (args: string[], { token = 'cli-admin-token' as string | null, url = server.url, env = {} as Record<string, string> } = {}) => {
    const env0 = { ...process.env };
    for (const k of ['TIDE_TOKEN', 'TIDE_ADMIN_TOKEN', 'TIDE_SERVER']) delete env0[k];
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'tide.js'), ...args, '--server', url, ...(token === null ? [] : ['--token', token])], { cwd: dir, env: { ...env0, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await exitAfterOutput(child);
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
    assert.match(yaml.err, /broken\.yaml: not valid YAML or JSON: line 2, column 1: bad indentation \(flow sequence .*\)\n$/, 'one line, with where, no snippet');
    const dup = join(dir, 'dup.json');
    writeFileSync(dup, '{"name": "a", "tasks": [{"command": "true", "gpus": 1, "gpus": 8}]}');
    const duplicate = await run(['submit', dup]);
    assert.equal(duplicate.code, 2);
    assert.equal(duplicate.err, `tide: ${dup}: not valid YAML or JSON: line 1, column 56: duplicate key "gpus"\n`);
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
  test('-o json: an error is one JSON object on stderr with its code (and fields), the exit code unchanged', async () => {
    const bad = join(dir, 'bad-json.yaml');
    writeFileSync(bad, 'name: ok\ntasks:\n  - gpus: 1.5\n    memory: 64GB\n');
    const [notFound, invalid, usage, unreachable, human] = await Promise.all([
      run(['job', '424242', '-o', 'json']),
      run(['submit', bad, '-o', 'json']),
      run(['jobs', '--bogus-flag', '-o', 'json']),
      run(['jobs', '-o', 'json'], { url: 'http://127.0.0.1:9' }),
      run(['job', '424242']),
    ]);
    const parse = (r: { err: string; out: string }) => {
      assert.equal(r.out, '', 'stdout stays empty');
      const lines = r.err.trim().split('\n');
      assert.equal(lines.length, 1, r.err);
      return JSON.parse(lines[0] ?? '').error;
    };
    assert.equal(notFound.code, 3);
    assert.deepEqual(parse(notFound), { code: 'not_found', message: 'no job 424242' });
    assert.equal(invalid.code, 2);
    const e = parse(invalid);
    assert.equal(e.code, 'invalid_spec');
    assert.deepEqual(e.fields.map((f: any) => f.path).slice(0, 2), ['tasks[0].gpus', 'tasks[0].memory']);
    assert.equal(usage.code, 2);
    assert.deepEqual(parse(usage), { code: 'invalid_request', message: "unknown option '--bogus-flag'" });
    assert.equal(unreachable.code, 7);
    assert.equal(parse(unreachable).code, 'unreachable');
    assert.equal(human.code, 3);
    assert.match(human.err, /^tide: no job 424242/, 'without -o json errors stay one human line');
  });

  test('tenant list, and admin commands take the admin token from DATA_DIR/credentials.json', async () => {
    const created = await run(['tenant', 'create', 'cli-team', '-o', 'json']);
    assert.equal(created.code, 0, created.err);
    const list = await run(['tenant', 'list', '-o', 'json']);
    assert.equal(list.code, 0, list.err);
    assert.ok(JSON.parse(list.out).includes('cli-team'));
    const table = await run(['tenant', 'list']);
    assert.match(table.out, /^TENANT\n(.*\n)*cli-team\n/);

    // As after `tide up`: client.json holds the tenant token, credentials.json the admin token.
    const data = join(dir, 'up-data');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'client.json'), JSON.stringify({ server: server.url, token: JSON.parse(created.out).token }));
    const without = await run(['tenant', 'list', '--data-dir', data], { token: null });
    assert.equal(without.code, 4);
    assert.match(without.err, /needs the admin token: pass --token, set TIDE_ADMIN_TOKEN/);
    writeFileSync(join(data, 'credentials.json'), JSON.stringify({ adminToken: 'cli-admin-token', agentToken: 'x', tenantToken: 'y' }), { mode: 0o600 });
    const withCreds = await run(['tenant', 'list', '--data-dir', data], { token: null });
    assert.equal(withCreds.code, 0, withCreds.err);
    assert.match(withCreds.out, /cli-team/);
    const fromEnv = await run(['tenant', 'list', '--data-dir', join(dir, 'nowhere')], { token: null, env: { TIDE_ADMIN_TOKEN: 'cli-admin-token' } });
    assert.equal(fromEnv.code, 0, fromEnv.err);
    // A tenant's own commands keep client.json's tenant token; a tenant token on an admin command says how to pass the admin one.
    const jobs = await run(['jobs', '--data-dir', data], { token: null });
    assert.equal(jobs.code, 0, jobs.err);
    const forbidden = await run(['tenant', 'list'], { token: JSON.parse(created.out).token });
    assert.equal(forbidden.code, 4);
    assert.equal(forbidden.err, 'tide: this needs an admin token; yours is tenant: pass the admin token with --token or TIDE_ADMIN_TOKEN (forbidden, HTTP 403)\n');
  });

  test('events: the newest 50 oldest-first with a note when there are more, --limit across pages, --all, --job; jobs page too', async () => {
    // 1,100 jobs (each with its events), submitted over the API together, then an array of three.
    const posted = await Promise.all(Array.from({ length: 1100 }, (_, i) => fetch(`${server.url}/v1/jobs`, { method: 'POST', headers: { authorization: 'Bearer cli-admin-token', 'content-type': 'application/json' }, body: JSON.stringify({ name: `many-${i}`, tasks: [{ gpus: 0, command: 'true' }] }) }).then((r) => r.json() as Promise<any>)));
    const jobIds: string[] = posted.map((p) => p.jobs[0].id).sort((a: string, b: string) => Number(a) - Number(b));
    assert.equal(new Set(jobIds).size, 1100);
    const spec = join(dir, 'array.json');
    writeFileSync(spec, JSON.stringify({ name: 'many', kind: 'batch', array: 3, tasks: [{ gpus: 0, command: 'true' }] }));
    const submitted = await run(['submit', spec, '-o', 'json']);
    assert.equal(submitted.code, 0, submitted.err);
    const arrayJob: string = JSON.parse(submitted.out).array.firstJobId;
    // Every event, straight from the API, page by page.
    const all: any[] = [];
    for (let next: string | null = null; ; ) {
      const res = await fetch(`${server.url}/v1/events?limit=1000${next === null ? '' : `&after=${next}`}`, { headers: { authorization: 'Bearer cli-admin-token' } });
      const body: any = await res.json();
      all.push(...body.events);
      if ((next = body.next) === null) break;
    }
    assert.ok(all.length > 1100);
    const ids = (out: string) => JSON.parse(out).map((e: any) => e.id);

    const tail = await run(['events']);
    assert.equal(tail.code, 0, tail.err);
    const lines = tail.out.trim().split('\n');
    assert.equal(lines.length, 51, 'a header and 50 events');
    assert.match(lines[0] ?? '', /^TIME\s+EVENT\s+JOB\s+NODE\s+MESSAGE/);
    assert.match(tail.err, /showing the newest 50 events of more: --limit N or --all/);
    const tailJson = await run(['events', '-o', 'json']);
    assert.deepEqual(ids(tailJson.out), all.slice(-50).map((e) => e.id), 'the newest 50, oldest first');

    const acrossPages = await run(['events', '--limit', '1050', '-o', 'json']);
    assert.deepEqual(ids(acrossPages.out), all.slice(-1050).map((e) => e.id));
    const everything = await run(['events', '--all', '-o', 'json']);
    assert.deepEqual(ids(everything.out), all.map((e) => e.id));
    assert.equal(everything.err, '', 'nothing was cut');
    const everythingText = await run(['events', '--all']);
    assert.equal(everythingText.out.trim().split('\n').length, all.length + 1);
    const oneJob = await run(['events', '--job', jobIds[7] ?? '', '-o', 'json']);
    assert.deepEqual(JSON.parse(oneJob.out).map((e: any) => e.jobId), all.filter((e) => e.jobId === jobIds[7]).map((e) => e.jobId));
    assert.ok(JSON.parse(oneJob.out).length >= 1);

    const jobsCut = await run(['jobs', '-o', 'json']);
    assert.equal(jobsCut.code, 0, jobsCut.err);
    const shown = JSON.parse(jobsCut.out).map((j: any) => j.id);
    assert.equal(shown.length, 1000);
    assert.equal(shown.at(-1), arrayJob, "the newest job last: the array's waiting elements");
    assert.match(jobsCut.err, /showing the newest 1000 jobs of more: --limit N or --all/);
    const jobsAll = await run(['jobs', '--all', '-o', 'json']);
    const allIds = JSON.parse(jobsAll.out).map((j: any) => j.id);
    for (const id of jobIds) assert.ok(allIds.includes(id), `job ${id} in --all`);
    assert.equal(jobsAll.err, '');
    const few = await run(['jobs', '--limit', '3']);
    assert.equal(few.out.trim().split('\n').length, 4, "a header, two jobs, and the array's three waiting elements as one row, as in squeue");
    assert.match(few.out, /\n\d+_\[0-2\]\s+many-\[0-2\]\s+default\s+\S+\s+PD\s/);
    assert.match(few.err, /showing the newest 3 jobs/);
    assert.match((await run(['jobs', '--limit', '3', '-r'])).out, new RegExp(`\n${arrayJob}\\s+many-\\[0-2\\]\\s`), 'its own job id with -r');
  });
});

describe('tide logs against a real agent', () => {
  const dir = tempDir('cli-logs');
  let server: ServerHandle;
  let agent: Proc;
  let api: Api;
  before(async () => {
    server = await startServerProcess({ dataDir: join(dir, 'server'), config: writeConfig(dir) });
    api = new Api(server.url);
    agent = startAgentProcess({ servers: [server.url], name: 'logs-node', gpus: '2xH100', dataDir: join(dir, 'agent'), checkpointRoot: join(dir, 'ckpt') });
    await waitFor('a ready node', async () => ((await api.req('GET', '/v1/nodes')).json.nodes.length === 1 ? true : undefined));
  });
  after(async () => {
    await agent.stop();
    await server.proc.stop();
  });

  const run = async (args: string[]) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'tide.js'), ...args, '--server', server.url, '--token', TENANT], { cwd: dir });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await exitAfterOutput(child);
    return { code, out: Buffer.concat(out), err };
  };

  test('a 3.5 MB log comes back whole, chunk after chunk (it stopped at 1 MiB); -o json gives the chunks as JSON lines', async () => {
    const line = 'tide-log-line-0123456789abcdefghijklmnopqrstuvwxyz\n';
    const size = 3_500_000;
    const expected = line.repeat(Math.ceil(size / line.length)).slice(0, size);
    const id = await api.submit({ name: 'big-log', tasks: [{ gpus: 1, command: `yes '${line.trim()}' | head -c ${size}` }] });
    await api.waitState(id, ['succeeded']);
    const plain = await run(['logs', id]);
    assert.equal(plain.code, 0, plain.err);
    assert.equal(plain.out.length, size, 'every byte');
    assert.ok(plain.out.toString() === expected, 'the same bytes in order');

    const chunks = (await run(['logs', id, '-o', 'json'])).out.toString().trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(chunks.length, 4, '1 MiB chunks');
    let offset = 0;
    for (const c of chunks) {
      assert.deepEqual([c.job, c.task, c.stream, c.offset], [id, 0, 'stdout', offset]);
      assert.equal(c.nextOffset, offset + Buffer.byteLength(c.text));
      offset = c.nextOffset;
    }
    assert.equal(offset, size);
    assert.equal(chunks.map((c) => c.text).join(''), expected);
    assert.deepEqual(chunks.map((c) => c.finished), [true, true, true, true]);

    // A reader that stops early (`tide logs ID | head -c 100`) ends the command quietly.
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'tide.js'), 'logs', id, '--server', server.url, '--token', TENANT], { cwd: dir });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await exitAfterOutput(child);
    assert.equal(err, '');
    assert.equal(code, 0);
  });

  test('an array: submit prints it once, --wait follows its counts (exit 0 only if all succeeded), tide array and jobs --array show it, cancel --array stops it', async () => {
    const write = (name: string, spec: unknown): string => {
      const file = join(dir, name);
      writeFileSync(file, JSON.stringify(spec));
      return file;
    };
    const ok = await run(['submit', write('ok-array.json', { name: 'fine', kind: 'batch', array: 3, tasks: [{ gpus: 1, command: 'test "$TIDE_ARRAY_INDEX" -lt 3' }] }), '--wait']);
    assert.equal(ok.code, 0, ok.err);
    const id = /^Submitted array (\d+): 3 jobs \(fine-0 … fine-2, queue default; the first is job \d+\)$/m.exec(ok.out.toString())?.[1];
    assert.ok(id, ok.out.toString());
    assert.match(ok.out.toString(), new RegExp(`^array ${id}: 3 succeeded$`, 'm'));
    const shown = await run(['array', id as string]);
    assert.match(shown.out.toString(), /^ {2}Elements: {2}3 succeeded$/m);
    const elements = JSON.parse((await run(['jobs', '--array', id as string, '--all', '-o', 'json'])).out.toString());
    assert.deepEqual(elements.map((j: { name: string; state: string }) => `${j.name} ${j.state}`).sort(), ['fine-0 succeeded', 'fine-1 succeeded', 'fine-2 succeeded']);
    const second = elements.find((j: { name: string }) => j.name === 'fine-1');
    assert.match((await run(['job', second.id])).out.toString(), new RegExp(`^ {2}Array: {5}element 1 of array ${id} \\(tide array ${id}\\)$`, 'm'));
    assert.match((await run(['job', `${id}_1`])).out.toString(), new RegExp(`^Job ${second.id}: fine-1$`, 'm'), "an element named as Slurm names it (ARRAY_INDEX)");

    const bad = await run(['submit', write('bad-array.json', { name: 'half', kind: 'batch', array: 2, tasks: [{ gpus: 1, command: 'exit "$TIDE_ARRAY_INDEX"' }] }), '--wait']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /array \d+: 1 of 2 jobs did not succeed \(1 succeeded, 1 failed\)/);

    // CPU-only elements bound to the node together run as one range of processes (one per element): the one that fails is counted alone.
    const cpus = await run(['submit', write('cpu-array.json', { name: 'cpus', kind: 'batch', array: 5, tasks: [{ gpus: 0, cpu: 0.1, command: 'echo "element $TIDE_ARRAY_INDEX"; test "$TIDE_ARRAY_INDEX" -ne 3' }] }), '--wait']);
    assert.equal(cpus.code, 1, cpus.err);
    assert.match(cpus.err, /array \d+: 1 of 5 jobs did not succeed \(4 succeeded, 1 failed\)/);
    const cpusId = /^Submitted array (\d+)/m.exec(cpus.out.toString())?.[1] as string;
    const ranges = JSON.parse((await run(['jobs', '--array', cpusId, '--all', '-o', 'json'])).out.toString());
    assert.ok(ranges.length < 5 && ranges.some((j: { arrayCount: number }) => j.arrayCount > 1), JSON.stringify(ranges.map((j: { name: string }) => j.name)));
    const third = await run(['logs', `${cpusId}_3`]);
    assert.match(third.out.toString(), /element 3/);

    const slow = await run(['submit', write('slow-array.json', { name: 'slow', kind: 'batch', array: 4, tasks: [{ gpus: 1, command: 'sleep 60' }] }), '-o', 'json']);
    const slowId = JSON.parse(slow.out.toString()).array.id as string;
    await waitFor('two elements running', async () => ((await api.req('GET', `/v1/arrays/${slowId}`)).json.array.counts.running === 2 ? true : undefined));
    // squeue's way: the two waiting elements are one row, the two running ones a row each.
    await waitFor('the waiting ones to share a reason', async () => {
      const rows = (await run(['jobs', '--array', slowId])).out.toString().trim().split('\n').slice(1);
      const together = new RegExp(`^${slowId}_\\[\\d+-\\d+\\]\\s+slow-\\[\\d+-\\d+\\]\\s+default\\s+\\S+\\s+PD\\s`);
      return rows.length === 3 && rows.some((r) => together.test(r)) ? true : undefined;
    });
    const one = await run(['cancel', `${slowId}_[3]`]);
    assert.equal(one.code, 0, one.err);
    assert.match(one.out.toString(), new RegExp(`^Cancelled 1 job of array ${slowId} \\(slow\\): .*1 cancelled\n$`));
    const cancelled = await run(['cancel', '--array', slowId]);
    assert.equal(cancelled.code, 0, cancelled.err);
    assert.equal(cancelled.out.toString(), `Cancelled 3 jobs of array ${slowId} (slow): 4 cancelled\n`);
    await waitFor('the node free again', async () => ((await api.req('GET', '/v1/nodes')).json.nodes[0].gpuUsedMilli.every((m: number) => m === 0) ? true : undefined));
    assert.equal((await run(['cancel', '--array', slowId])).code, 5, 'nothing left to cancel: a conflict');
  });

  test('--follow prints output as it comes until the job finishes; an empty log in -o json is one object', async () => {
    const id = await api.submit({ name: 'slow-log', tasks: [{ gpus: 1, command: 'for i in 1 2 3; do echo line-$i; sleep 0.4; done' }] });
    const followed = await run(['logs', id, '--follow']);
    assert.equal(followed.code, 0, followed.err);
    assert.equal(followed.out.toString(), 'line-1\nline-2\nline-3\n');
    assert.equal((await api.job(id)).job.state, 'succeeded');
    const empty = await run(['logs', id, '--stderr', '-o', 'json']);
    assert.deepEqual(JSON.parse(empty.out.toString()), { job: id, task: 0, stream: 'stderr', offset: 0, nextOffset: 0, finished: true, text: '' });
  });
});
