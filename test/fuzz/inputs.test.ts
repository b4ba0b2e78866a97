/** Fuzzing files users hand to Tide: cluster configs, trace rows and `tide sim` inputs (seeded; bench/fuzz.ts runs 10⁵). */
import { test } from 'node:test';
import { runTarget } from './targets.ts';

test('parseConfig: a config where each token names one principal, or a UserError naming the file', async () => {
  await runTarget('config', 400, 14);
});

test('trace CSVs and sim YAML: sane numbers, or a UserError naming file and line', async () => {
  await runTarget('traces', 300, 14);
});
