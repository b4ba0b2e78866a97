/**
 * NodePower with real programs (shell scripts in child processes) on a real store: the suspend
 * and resume programs get the node's name; a failing or hanging suspend puts the node back in
 * service, a failing resume marks it down; with real programs a node is back at its first
 * heartbeat after the resume; with consolidation off, nodes left asleep are handed back.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseJobSpec } from '../../api/spec.ts';
import { openStore } from '../../store/sqlStore.ts';
import type { Store } from '../../store/store.ts';
import type { NodePowerSettings } from '../scheduling/energyStages.ts';
import { NodePower, type NodePowerOptions } from './nodePower.ts';

const dir = mkdtempSync(join(tmpdir(), 'tide-nodepower-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const script = (name: string, body: string): string => {
  const file = join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
};
const calls = join(dir, 'calls.log');
const ok = script('ok.sh', `echo "$0 $*" >> ${calls}`);
const fails = script('fails.sh', 'echo "no BMC answered" >&2; exit 3');
const hangs = script('hangs.sh', 'sleep 30');

async function store(): Promise<Store> {
  const s = await openStore('memory:');
  for (const id of ['a', 'b']) await s.registerNode({ id, address: 'http://127.0.0.1:1', cpuMilli: 8000, memoryMib: 16384, gpus: [{ index: 0, model: 'H100', memoryMib: 81920, uuid: `${id}0` }], simulated: true }, 0);
  return s;
}
const settings = (o: Partial<NodePowerSettings>): NodePowerSettings => ({ resumeSeconds: 5, resumeTimeoutSeconds: 20, suspendProgram: [ok], resumeProgram: [ok, '--on'], programTimeoutSeconds: 5, ...o });
const options = (actions: string[], lines: string[] = []): NodePowerOptions => ({ log: (l) => lines.push(l), clock: () => 50_000, onAction: (a, r) => actions.push(`${a}:${r}`) });
const stateOf = async (s: Store, id: string) => (await s.getNode(id))?.state;

test("the programs get the node's name; with real programs a node is back at its first heartbeat after the resume", async () => {
  const s = await store();
  const actions: string[] = [];
  const power = new NodePower(s, settings({}), options(actions));
  await power.apply([{ node: 'a', state: 'off' }], 1000);
  assert.equal(await stateOf(s, 'a'), 'suspended', 'marked before the program runs');
  await power.settled();
  await power.apply([{ node: 'a', state: 'on' }], 2000);
  await power.settled();
  assert.deepEqual(readFileSync(calls, 'utf8').trim().split('\n'), [`${ok} a`, `${ok} --on a`]);
  assert.deepEqual(actions, ['suspend:ok', 'resume:ok']);
  await power.check(await s.snapshot(), 2500);
  assert.equal(await stateOf(s, 'a'), 'resuming', 'no heartbeat since the resume yet');
  await s.heartbeat('a', [], [], 2600);
  await power.check(await s.snapshot(), 2700);
  assert.equal(await stateOf(s, 'a'), 'ready', 'back at once: no dry-run wait with a real resume program');
  await s.close();
});

test('a failing suspend program puts the node back in service, a hanging one is killed at its timeout; neither holds up another node', async () => {
  const s = await store();
  const actions: string[] = [];
  const lines: string[] = [];
  let changes = 0;
  const power = new NodePower(s, settings({ suspendProgram: [fails] }), { ...options(actions, lines), onChange: () => changes++ });
  await power.apply([{ node: 'a', state: 'off' }], 1000);
  await power.settled();
  assert.equal(await stateOf(s, 'a'), 'ready');
  assert.equal(changes, 1, 'the loop is poked to plan again');
  const events = (await s.listEvents({ limit: 100 })).filter((e) => e.nodeId === 'a' && e.type !== 'node:registered').map((e) => `${e.type} ${e.message}`);
  assert.deepEqual(events, [`node:suspended empty: suspended (${fails})`, 'node:ready suspend program failed (exit 3: no BMC answered): back in service']);
  assert.ok(lines.includes('node a: suspend program failed (exit 3: no BMC answered)'));

  const slow = new NodePower(s, settings({ suspendProgram: [hangs], programTimeoutSeconds: 0.3 }), options(actions));
  await slow.apply([{ node: 'a', state: 'off' }, { node: 'b', state: 'off' }], 2000);
  // Both programs run side by side: apply returned at once, each node marked.
  assert.deepEqual([await stateOf(s, 'a'), await stateOf(s, 'b')], ['suspended', 'suspended']);
  await slow.settled();
  assert.deepEqual([await stateOf(s, 'a'), await stateOf(s, 'b')], ['ready', 'ready']);
  assert.deepEqual(actions, ['suspend:failed', 'suspend:timeout', 'suspend:timeout']);
  assert.match((await s.listEvents({ limit: 100 })).at(-1)?.message ?? '', /suspend program failed \(still running after 0\.3 s: killed\): back in service/);
  await s.close();
});

test('a failing resume program marks the node down at once; a node with a task is not suspended whatever the plan says', async () => {
  const s = await store();
  const actions: string[] = [];
  const power = new NodePower(s, settings({ resumeProgram: [fails] }), options(actions));
  await power.apply([{ node: 'a', state: 'off' }], 1000);
  // While its suspend program runs, a node is not asked to resume (the stage asks again next cycle).
  await power.apply([{ node: 'a', state: 'on' }], 1500);
  assert.equal(await stateOf(s, 'a'), 'suspended');
  await power.settled();
  await power.apply([{ node: 'a', state: 'on' }], 2000);
  await power.settled();
  assert.equal(await stateOf(s, 'a'), 'lost');
  assert.deepEqual(actions.slice(-1), ['resume:failed']);
  // b runs a task: the store refuses the suspend, no program runs.
  await s.ensureTenant('t', 0);
  const spec = parseJobSpec({ name: 'x', tasks: [{ gpus: 1, command: 'true' }] });
  assert.ok(spec.ok);
  const job = (await s.submit('t', spec.spec, null, 3000)).jobs[0];
  assert.ok(await s.applyPlan({ binds: [{ jobId: job?.id as string, attempt: 0, tasks: [{ index: 0, node: 'b', gpus: [0], gpuMilli: 1000 }] }], preemptions: [], pending: [] }, 3000));
  const before = actions.length;
  await power.apply([{ node: 'b', state: 'off' }], 4000);
  await power.settled();
  assert.equal(await stateOf(s, 'b'), 'ready');
  assert.equal(actions.length, before);
  await s.close();
});

test('with consolidation off, nodes left suspended or resuming are handed back; a dry run only marks', async () => {
  const s = await store();
  const dry = new NodePower(s, settings({ suspendProgram: null, resumeProgram: null }), options([]));
  await dry.apply([{ node: 'a', state: 'off' }, { node: 'b', state: 'off' }], 1000);
  await dry.apply([{ node: 'b', state: 'on' }], 2000);
  assert.deepEqual([await stateOf(s, 'a'), await stateOf(s, 'b')], ['suspended', 'resuming']);
  const off = new NodePower(s, null, options([]));
  await off.apply([{ node: 'a', state: 'on' }], 3000);
  assert.equal(await stateOf(s, 'a'), 'suspended', 'consolidation off: no power changes are carried out');
  await off.check(await s.snapshot(), 3000);
  assert.deepEqual([await stateOf(s, 'a'), await stateOf(s, 'b')], ['ready', 'ready']);
  await s.close();
});
