import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PowerCaps } from './powerCap.ts';

test('the lowest cap of the live runs on each GPU; ended or uncapped runs set none', () => {
  const want = PowerCaps.wanted([
    { gpus: [0, 1], powerCapWatts: 400, alive: true },
    { gpus: [1], powerCapWatts: 300, alive: true },
    { gpus: [2], powerCapWatts: 100, alive: false },
    { gpus: [3], alive: true },
  ]);
  assert.deepEqual([...want].sort(), [[0, 400], [1, 300]]);
});

test('simulated GPUs: a dry run, logged, that the simulated power then honours; lifted when the run ends', () => {
  const lines: string[] = [];
  const caps = new PowerCaps(true, (l) => lines.push(l));
  caps.update([{ gpus: [0], powerCapWatts: 250, alive: true }]);
  assert.equal(caps.capOf(0), 250);
  caps.update([{ gpus: [0], powerCapWatts: 250, alive: true }]);
  caps.update([{ gpus: [0], powerCapWatts: 250, alive: false }]);
  assert.equal(caps.capOf(0), undefined);
  assert.deepEqual(lines, ['power cap (dry run, simulated GPU 0): nvidia-smi -i 0 -pl 250', 'power cap lifted (dry run, simulated GPU 0)']);
});

test('real GPUs: nvidia-smi -pl sets the cap and the default limit is set back; a refusal is logged once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-pl-'));
  try {
    const calls = join(dir, 'calls');
    const smi = join(dir, 'nvidia-smi');
    writeFileSync(smi, `#!/bin/sh\necho "$*" >> "${calls}"\ncase "$*" in *default_limit*) echo "700.00";; *"-pl 1"*) echo "Insufficient Permissions" >&2; exit 4;; esac\n`);
    chmodSync(smi, 0o755);
    const lines: string[] = [];
    const caps = new PowerCaps(false, (l) => lines.push(l), smi);
    caps.update([{ gpus: [2], powerCapWatts: 350, alive: true }]);
    const made = (): string[] => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : []);
    /** Waits (bounded: the calls run in the background, slowly on a loaded machine) for n calls in all. */
    const wait = async (n: number) => {
      for (let i = 0; i < 500 && made().length < n; i++) await new Promise((r) => setTimeout(r, 20));
    };
    await wait(1);
    caps.update([]);
    await wait(3);
    assert.deepEqual(made(), ['-i 2 -pl 350', '-i 2 --query-gpu=power.default_limit --format=csv,noheader,nounits', '-i 2 -pl 700']);
    caps.update([{ gpus: [0], powerCapWatts: 1, alive: true }]);
    await wait(4);
    caps.update([{ gpus: [0], powerCapWatts: 1, alive: false }]);
    await wait(6);
    caps.update([{ gpus: [0], powerCapWatts: 1, alive: true }]);
    await wait(7);
    const refusals = () => lines.filter((l) => /could not set a 1 W power limit \(Insufficient Permissions\): running uncapped/.test(l)).length;
    for (let i = 0; i < 500 && refusals() === 0; i++) await new Promise((r) => setTimeout(r, 20));
    // The third call's refusal, were it logged, would come right after its process exits.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(made().slice(3), ['-i 0 -pl 1', '-i 0 --query-gpu=power.default_limit --format=csv,noheader,nounits', '-i 0 -pl 700', '-i 0 -pl 1']);
    assert.equal(refusals(), 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
