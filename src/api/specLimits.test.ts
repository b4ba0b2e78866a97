/** Size limits on what a task execs: each refused with its field, before any agent sees it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_ARG_BYTES, MAX_ENV_VARS, MAX_EXEC_BYTES, parseJobSpec } from './spec.ts';

const messages = (input: unknown): string[] => {
  const r = parseJobSpec(input);
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
};

test('a 140 KB command or a 900 KB env value is refused with its size and the limit', () => {
  assert.deepEqual(messages({ name: 'a', tasks: [{ command: 'x'.repeat(143_360) }] }), [`tasks[0].command: 143360 bytes, at most ${MAX_ARG_BYTES}`]);
  assert.deepEqual(messages({ name: 'a', tasks: [{ command: 'true', env: { BIG: 'y'.repeat(900 * 1024) } }] }), [
    `tasks[0].env.BIG: ${900 * 1024} bytes, at most ${MAX_ARG_BYTES}`,
    `tasks[0].command: command and env take ${5 + 4 + 900 * 1024 + 1} bytes together, at most ${MAX_EXEC_BYTES}`,
  ]);
  // One argv element of an argv list, counted in UTF-8 bytes (é is two).
  assert.deepEqual(messages({ name: 'a', tasks: [{ command: ['echo', 'é'.repeat(40_000)] }] }), [`tasks[0].command[1]: 80000 bytes, at most ${MAX_ARG_BYTES}`]);
});

test('too many env names, too much in total, and NUL bytes are refused', () => {
  const many = Object.fromEntries(Array.from({ length: MAX_ENV_VARS + 1 }, (_, i) => [`V${i}`, '1']));
  assert.deepEqual(messages({ name: 'a', tasks: [{ command: 'true', env: many }] }), [`tasks[0].env: ${MAX_ENV_VARS + 1} variables, at most ${MAX_ENV_VARS}`]);
  const nine = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`V${i}`, 'z'.repeat(60_000)]));
  assert.match(messages({ name: 'a', tasks: [{ command: 'true', env: nine }] }).join('\n'), /^tasks\[0\]\.command: command and env take 540\d{3} bytes together, at most 524288$/);
  assert.deepEqual(messages({ name: 'a', tasks: [{ command: ['echo', 'a\0b'], env: { X: 'c\0' } }] }), ['tasks[0].command[1]: must not contain a NUL byte', 'tasks[0].env.X: must not contain a NUL byte']);
});

test('commands and env just under the limits are accepted', () => {
  const r = parseJobSpec({ name: 'a', tasks: [{ command: 'x'.repeat(MAX_ARG_BYTES), env: { A: 'y'.repeat(MAX_ARG_BYTES) } }] });
  assert.equal(r.ok, true);
});
