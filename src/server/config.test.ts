/** parseConfig: regressions for what test/fuzz found (each failed before its fix). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UserError } from '../util/errors.ts';
import { parseConfig } from './config.ts';

const refused = (text: string, re: RegExp): void => {
  assert.throws(() => parseConfig(text, 'cluster.yaml'), (e: unknown) => e instanceof UserError && re.test(e.message));
};

test('a token given to two principals is refused, naming both places (it silently became the last one\'s)', () => {
  refused('tenants:\n  - name: a\n    tokens: [token-aaaaaaaa]\n  - name: b\n    tokens: [token-aaaaaaaa]\n', /^cluster\.yaml: tenants\[1\]\.tokens\[0\]: the same token as tenants\[0\]\.tokens\[0\]$/);
  refused('adminToken: token-aaaaaaaa\ntenants:\n  - name: a\n    tokens: [token-aaaaaaaa]\n', /tenants\[0\]\.tokens\[0\]: the same token as adminToken/);
  refused('adminToken: token-aaaaaaaa\nagentToken: token-aaaaaaaa\n', /agentToken: the same token as adminToken/);
  assert.equal(parseConfig('adminToken: token-aaaaaaaa\ntenants:\n  - name: a\n    tokens: [token-bbbbbbbb]\n', 'cluster.yaml').tenants[0]?.tokens[0], 'token-bbbbbbbb');
});

test('a quota past 2^53 is refused (it was accepted and stored inexactly)', () => {
  refused('queues:\n  - name: q\n    borrowingLimit: 9007199254740992\n', /queues\[0\]\.borrowingLimit: must be a non-negative integer/);
});

test('an unknown key that is empty, spaced or odd is quoted, so the error shows which one', () => {
  refused('adminToken: token-aaaaaaaa\n" ei$6b": 1\n', /^cluster\.yaml: " ei\$6b": unknown field$/);
  refused('"": 1\n', /^cluster\.yaml: "": unknown field$/);
  refused('queues:\n  - name: q\n    " x": 1\n', /^cluster\.yaml: queues\[0\]\." x": unknown field$/);
  refused('colour: blue\n', /^cluster\.yaml: colour: unknown field$/);
});
