import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildProgram, CLUSTER_COMMANDS, COMMAND_GROUPS } from './program.ts';

const names = (p: { commands: readonly { name(): string }[] }): string[] => p.commands.map((c) => c.name()).sort();

test('every command belongs to exactly one lazily loaded group, and each group registers what it lists', async () => {
  const all = names(await buildProgram([]));
  const listed = COMMAND_GROUPS.flatMap((g) => g.names).sort();
  assert.deepEqual(all, listed);
  for (const g of COMMAND_GROUPS) assert.deepEqual(names(await buildProgram([g.names[0] ?? ''])), [...g.names].sort());
});

test('a cluster command loads only the cluster group; --version none; help or an unknown command all', async () => {
  assert.deepEqual(names(await buildProgram(['jobs', '-o', 'json'])), [...CLUSTER_COMMANDS].sort());
  assert.deepEqual(names(await buildProgram(['--version'])), []);
  assert.equal(names(await buildProgram(['--help'])).length, COMMAND_GROUPS.flatMap((g) => g.names).length);
  assert.equal(names(await buildProgram(['jbos'])).length, COMMAND_GROUPS.flatMap((g) => g.names).length);
});
