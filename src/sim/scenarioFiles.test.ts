import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readClusterFile } from './scenarioFiles.ts';

test('a cluster file that defines a queue twice is refused, naming the file, line and field', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'tide-cluster-')), 'cluster.yaml');
  writeFileSync(file, ['nodes:', '  - { name: a, count: 1, gpus: 8, model: H100 }', 'queues:', '  - { name: team, nominalQuota: { H100: 4 } }', '  - { name: team, nominalQuota: { H100: 2 } }', ''].join('\n'));
  assert.throws(() => readClusterFile(file), (e: unknown) => e instanceof Error && e.message.includes(file) && e.message.includes("queues[1].name") && e.message.includes("queue 'team' is defined twice"));
});
