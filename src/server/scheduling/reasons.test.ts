import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { PENDING_REASONS } from '../../core/scheduling/reasons.ts';

test('docs/pending-reasons.md lists exactly the pending reason codes the schedulers may give', () => {
  const doc = readFileSync(new URL('../../../docs/pending-reasons.md', import.meta.url), 'utf8');
  const documented = [...doc.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual(documented, Object.keys(PENDING_REASONS));
});
