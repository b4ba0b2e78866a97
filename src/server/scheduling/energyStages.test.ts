/**
 * The cluster config's `scheduling.energy` section: the live defaults (powercap and timeshift on,
 * consolidate off), each stage switched and tuned, and bad input named by its field.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_POWER_MODEL } from '../../core/energy/powerModel.ts';
import { DEFAULT_PRICES } from '../../core/energy/pricing.ts';
import { energyStagesOf, parseConfig } from '../config.ts';
import { liveEnergy, stageNames } from './energyStages.ts';

const config = (energy: string): ReturnType<typeof parseConfig> => parseConfig(`scheduling:\n  energy: ${energy}\n`, 'cluster.yaml');
const problems = (energy: string): string => {
  try {
    config(energy);
  } catch (e) {
    return (e as Error).message;
  }
  return '';
};

test('with no section the live server runs powercap and timeshift, and no consolidation', () => {
  const e = energyStagesOf(parseConfig('queues: []\n', 'c.yaml'));
  assert.deepEqual(e.stages.powercap, {});
  assert.deepEqual(e.stages.timeshift, {});
  assert.equal(e.stages.consolidate, undefined);
  assert.equal(e.nodePower, null);
  assert.equal(e.stages.prices, DEFAULT_PRICES);
  assert.equal(stageNames(e), 'timeshift, powercap');
});

test('each stage is switched off, on or tuned; consolidate takes Slurm-like power-saving settings', () => {
  const c = config('{powercap: {maxSlowdown: 0, eta: 0.8}, timeshift: false, consolidate: {suspendSeconds: 5, resumeSeconds: 2, spareNodes: 1, suspendProgram: /bin/true, resumeProgram: [/usr/bin/env, "true"]}}');
  const e = energyStagesOf(c);
  assert.deepEqual(e.stages.powercap, { maxSlowdown: 0, eta: 0.8 });
  assert.equal(e.stages.timeshift, undefined);
  assert.deepEqual(e.stages.consolidate, { suspendSeconds: 5, resumeSeconds: 2, spareNodes: 1 });
  // No timeout given: twice the wake-up, at least Slurm's 60 s.
  assert.deepEqual(e.nodePower, { resumeSeconds: 2, resumeTimeoutSeconds: 60, suspendProgram: ['/bin/true'], resumeProgram: ['/usr/bin/env', 'true'], programTimeoutSeconds: 60 });
  assert.equal(stageNames(e), 'consolidate (suspend and resume programs), powercap');
  const dry = liveEnergy({ consolidate: true, powercap: null }, DEFAULT_POWER_MODEL, DEFAULT_PRICES);
  assert.deepEqual(dry.stages.consolidate, {});
  assert.equal(dry.stages.powercap, undefined);
  assert.deepEqual(dry.nodePower, { resumeSeconds: 300, resumeTimeoutSeconds: 600, suspendProgram: null, resumeProgram: null, programTimeoutSeconds: 60 });
  assert.equal(stageNames(dry), 'timeshift, consolidate (dry run)');
});

test('bad input names the field', () => {
  assert.match(problems('{powercap: {maxSlowdown: 2}}'), /scheduling\.energy\.powercap\.maxSlowdown: must be a number from 0 to 0\.5/);
  assert.match(problems('{powercap: yes please}'), /scheduling\.energy\.powercap: must be true, false or a map/);
  assert.match(problems('{consolidate: {suspendSecs: 5}}'), /scheduling\.energy\.consolidate\.suspendSecs/);
  assert.match(problems('{consolidate: {resumeSeconds: 100, resumeTimeoutSeconds: 50}}'), /scheduling\.energy\.consolidate\.resumeTimeoutSeconds: must be at least resumeSeconds \(100\)/);
  assert.match(problems('{consolidate: {suspendProgram: /sbin/off}}'), /scheduling\.energy\.consolidate\.resumeProgram: required with a suspendProgram/);
  assert.match(problems('{consolidate: {suspendProgram: []}}'), /scheduling\.energy\.consolidate\.suspendProgram: must be a program/);
  assert.match(problems('{sleep: true}'), /scheduling\.energy\.sleep/);
});
