import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { exitAfterOutput } from './childExit.ts';

test('the exit code comes after the output has been read to its end', async () => {
  // The shell exits at once; what it started writes its line later, on the same stderr. (A CLI's
  // one-line error was lost this way: 'exit' came before its data on a loaded machine.)
  const child = spawn('/bin/sh', ['-c', '(sleep 0.3; echo "tide: nope.yaml: cannot read: ENOENT" >&2) & exit 2']);
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  assert.equal(await exitAfterOutput(child), 2);
  assert.equal(err, 'tide: nope.yaml: cannot read: ENOENT\n');
});

test('a descendant holding the pipes open does not hold the exit code back', { timeout: 10_000 }, async () => {
  const child = spawn('/bin/sh', ['-c', 'sleep 30 & echo $!; exit 3']);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  assert.equal(await exitAfterOutput(child, 200), 3);
  process.kill(Number(out.trim()), 'SIGKILL');
});
