/** Fuzzing job specs: parseJobSpec directly, and submissions over HTTP in JSON and YAML (seeded; bench/fuzz.ts runs 10⁵). */
import { test } from 'node:test';
import { runTarget } from './targets.ts';

test('parseJobSpec: ok and round-trips, or every error names a field; never throws', async () => {
  await runTarget('spec', 1000, 14);
});

test('POST /v1/jobs with hostile JSON and YAML: a 4xx with {error}, or a job that reads back unchanged', async () => {
  await runTarget('spec-http', 100, 14);
});
