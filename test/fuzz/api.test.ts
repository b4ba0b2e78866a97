/** Fuzzing the HTTP API: random methods, paths, queries, bodies, content types and tokens against a real app (seeded). */
import { test } from 'node:test';
import { runTarget } from './targets.ts';

test('no request gets a 5xx, every 4xx is {error: {code, message}}, and the server stays healthy with nothing lost', async () => {
  await runTarget('api', 400, 14);
});
