/** Strict body parsing: duplicate JSON keys found wherever they are; YAML errors as one clean line. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { describeJsonError, describeYamlError, duplicateKeyMessage, findDuplicateKey, hasDuplicateKey, parseYamlStrict } from './strictParse.ts';

const dup = (text: string): string | null => {
  const value: unknown = JSON.parse(text); // the scanner only sees text JSON.parse accepted
  const d = findDuplicateKey(text);
  assert.equal(hasDuplicateKey(text, value), d !== null, `the key count agrees with the scan: ${text}`);
  return d && duplicateKeyMessage(d);
};

test('a duplicate JSON key is found with the path of its object', () => {
  assert.equal(dup('{"name":"a","tasks":[{"gpus":1,"gpus":2}]}'), 'duplicate key "gpus" at tasks[0]');
  assert.equal(dup('{"name":"a","name":"b"}'), 'duplicate key "name" at the top level');
  assert.equal(dup('{"tasks":[{"command":"x"},{"env":{"A":"1","B":"2","A":"3"}}]}'), 'duplicate key "A" at tasks[1].env');
  assert.equal(dup('[1,{"x":[{},{"a b":{"k":1,"k":2}}]}]'), 'duplicate key "k" at [1].x[1]["a b"]');
  assert.equal(dup('{"a":1,"\\u0061":2}'), 'duplicate key "a" at the top level', 'escapes are decoded');
});

test('no false alarm: same key in sibling objects, keys inside strings, escaped quotes', () => {
  assert.equal(dup('{"tasks":[{"gpus":1},{"gpus":2}],"x":{"gpus":3}}'), null);
  assert.equal(dup('{"cmd":"echo \\"a\\": 1, \\"a\\": 2","a":"{\\"b\\":1,\\"b\\":1}"}'), null);
  assert.equal(dup('{"a\\\\":1,"a":2}'), null, 'a key ending in a backslash');
  assert.equal(dup('{"a\\nb":1,"a\\\\nb":2}'), null);
  assert.equal(dup(' { } '), null);
  assert.equal(dup('"just a string"'), null);
  assert.equal(dup('[[],[[]],{}]'), null);
});

test('the scanner agrees with a reference on random JSON (seeded)', () => {
  // Reference: rebuild each object's key list from the text with a real tokenizer is what the
  // scanner does; here the property is that JSON.stringify of any value has no duplicate, and
  // splicing a copy of an existing key into an object always makes one.
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      const text = JSON.stringify(v, null, v === null ? 0 : 1);
      assert.equal(findDuplicateKey(text), null);
      assert.equal(hasDuplicateKey(text, v), false, text);
      const m = /\{\s*"((?:[^"\\]|\\.)*)":/.exec(text);
      if (m) {
        const at = text.indexOf('"', m.index);
        const spliced = `${text.slice(0, at)}"${m[1]}" : 0,${text.slice(at)}`;
        const parsed: unknown = JSON.parse(spliced);
        assert.notEqual(findDuplicateKey(spliced), null, spliced);
        assert.equal(hasDuplicateKey(spliced, parsed), true, spliced);
      }
    }),
    { seed: 14, numRuns: 2000 },
  );
});

test('YAML errors are one line with line and column, no snippet, no library advice', () => {
  const msg = (text: string): string => {
    try {
      parseYamlStrict(text);
    } catch (e) {
      return (e as Error).message;
    }
    return 'parsed';
  };
  assert.equal(msg('name: a\ntasks:\n  - gpus: 1\n    gpus: 2\n'), 'line 4, column 5: duplicate key "gpus"');
  assert.equal(msg('a: 1\n---\nb: 2\n'), 'line 2, column 1: more than one document (send one)');
  assert.match(msg('name: a\ntasks:\n  - gpus: 1\n     cpu: 2\n'), /^line 3, column 11: bad indentation/);
  assert.match(msg('a:\n\t- b\n'), /^line 2, column 1: bad indentation/);
  for (const text of ['name: [unclosed\n  - x: {', 'key: "unterminated\n', '- a\nb: 1\n', 'x: *nope\n', 'a: 1\n---\nb: 2\n']) {
    const m = msg(text);
    assert.doesNotMatch(m, /\n|please|YAML\.|mapAsMap|\^/, m);
  }
  assert.equal(describeYamlError(new Error('boom'), ''), 'boom');
});

test('JSON syntax errors say what and, where V8 tells, the line and column, never echoing the body', () => {
  assert.equal(describeJsonError('{"name": '), 'line 1, column 10: unexpected end of input');
  assert.equal(describeJsonError('{\n  "a": 01}'), 'line 2, column 9: unexpected number');
  assert.equal(describeJsonError('{"a":1}x'), 'line 1, column 8: unexpected non-whitespace character after the value');
  assert.equal(describeJsonError('{"secret": "s3cr3t", "tasks": [}'), "unexpected token '}'");
});
