import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cgroupTracker, defaultTracker, environTracker, type ProcTracker } from './procTrack.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts a "task" that leaves two daemons behind: one in a new session, one that also clears its environment. */
async function startEscapingTask(t: ProcTracker, runId: string): Promise<void> {
  const { procsFile: procs, env } = t.prepare(runId);
  const script = `${procs ? `echo $$ > "${procs}"; ` : ''}setsid sleep 300 </dev/null >/dev/null 2>&1 & env -i setsid sleep 301 </dev/null >/dev/null 2>&1 & exit 0`;
  const child = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore', env: { ...process.env, ...env } });
  await new Promise((r) => child.on('exit', r));
  await sleep(200);
}

for (const [name, make] of [
  ['environ', () => environTracker(`test-${process.pid}`)],
  ['the best one here', () => defaultTracker(`test-${process.pid}`)],
] as const) {
  test(`proctrack (${name}): a task's daemons outside its process group are found and killed`, async () => {
    const t = make();
    const runId = `r${process.pid}-${name.length}-${Date.now()}`;
    await startEscapingTask(t, runId);
    const found = t.pids(runId);
    // The setsid daemon keeps TIDE_PROCTRACK: every tracker finds it; a cgroup also finds the one with env -i.
    assert.ok(found.length >= 1, `${t.kind}: found ${found.length}`);
    if (t.kind.startsWith('cgroup')) assert.equal(found.length, 2, `${t.kind} sees both daemons`);
    assert.equal(t.signal(runId, 'SIGKILL'), found.length);
    await sleep(200);
    assert.deepEqual(t.pids(runId), []);
    t.release(runId);
    // The env -i daemon escapes the environ scan: clean it up by its command line, before the
    // next test starts its own (a late pkill killed that one, and the cgroup saw one daemon).
    await new Promise((r) => spawn('pkill', ['-f', '^sleep 301$']).on('exit', r));
  });
}

test('proctrack: an unusable cgroup directory gives no tracker rather than a broken one', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'tide-cg-')), 'a-file');
  writeFileSync(file, '');
  assert.equal(cgroupTracker(join(file, 'tide'), 'cgroup v2'), null);
});
