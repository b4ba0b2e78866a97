/** Regressions for what test/fuzz found in job specs (each failed before its fix). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCpu, parseMemory } from './quantity.ts';
import { parseJobSpec } from './spec.ts';

test('quantities too large to store exactly are refused, not rounded or turned into Infinity', () => {
  assert.equal(parseMemory(2 ** 73).ok, false);
  assert.equal(parseMemory('9'.repeat(400)).ok, false);
  assert.equal(parseMemory(`${'1'.repeat(30)}Pi`).ok, false);
  assert.equal(parseCpu(1e300).ok, false);
  assert.equal(parseCpu(`${'9'.repeat(30)}m`).ok, false);
  const r = parseJobSpec({ name: 'j', tasks: [{ command: 'x', memory: 2 ** 73 }] });
  assert.ok(!r.ok);
  assert.deepEqual(r.errors.map((e) => e.path), ['tasks[0].memory']);
  assert.match(r.errors[0]?.message ?? '', /too large/);
});

test('an env variable named __proto__ is refused by name (JSON.parse and YAML make it an own key)', () => {
  const env = JSON.parse('{"__proto__": "x", "OK": "1"}') as unknown;
  const r = parseJobSpec({ name: 'j', tasks: [{ command: 'x', env }] });
  assert.ok(!r.ok, 'it was accepted and silently dropped (or threw)');
  assert.deepEqual(r.errors.map((e) => e.path), ['tasks[0].env.__proto__']);
});
