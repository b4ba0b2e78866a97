import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AvailabilityProfile } from './estimates.ts';

test('the earliest start waits until enough GPUs stay free for the whole run', () => {
  const p = new AvailabilityProfile(100);
  p.setFree('V100', 2);
  p.release('V100', 2, 200);
  p.release('V100', 4, 300);
  assert.equal(p.earliest('V100', 2, 1000), 100);
  assert.equal(p.earliest('V100', 4, 1000), 200);
  assert.equal(p.earliest('V100', 8, 50), 300);
  assert.equal(p.earliest('V100', 9, 50), Infinity);
  assert.equal(p.earliest('K80', 1, 10), Infinity);
});

test('reservations push later jobs back, and a gap too short for a run is skipped', () => {
  const p = new AvailabilityProfile(0);
  p.setFree('V100', 4);
  p.reserve('V100', 4, 100, 100);
  assert.equal(p.earliest('V100', 4, 50), 0, 'fits before the reservation');
  assert.equal(p.earliest('V100', 4, 150), 200, 'too long for the gap: after the reservation');
  assert.equal(p.minFree('V100', 0, 300), 0);
});
