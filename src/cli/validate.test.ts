/** `tide validate` and `tide submit` check specs locally with the server's schema (real child processes). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tide-validate-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const env = { ...process.env };
for (const k of ['TIDE_TOKEN', 'TIDE_ADMIN_TOKEN', 'TIDE_SERVER']) delete env[k];
const tide = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'tide.js'), ...args], { cwd: dir, env, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

const good = file('good.yaml', 'name: train\ntimeLimit: 2h\ntasks:\n  - replicas: 2\n    gpus: "4"\n    command: python train.py\n    env: {LR: 0.1, DEBUG: true}\n');
const bad = file('bad.yaml', 'name: ok\nkind: serving\ntasks:\n  - gpus: 1.5\n    memory: 64GB\n    env: {TIDE_X: 1}\n');

test('tide validate: a short ok per valid file, exit 0', () => {
  const r = tide('validate', good, good);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, `${good}: ok: job train, 2 tasks, 8 GPUs\n`.repeat(2));
  assert.equal(r.err, '');
});

test('tide validate: one line per bad field with the file name, exit 2, no stack trace', () => {
  const broken = file('broken.json', '{"name": "a", "tasks": [{"command": "x", "gpus": 1, "gpus": 2}]}');
  const r = tide('validate', good, bad, broken);
  assert.equal(r.code, 2);
  assert.equal(r.out, `${good}: ok: job train, 2 tasks, 8 GPUs\n`);
  assert.deepEqual(r.err.trim().split('\n'), [
    `${bad}: kind: must be one of training, inference, batch, service`,
    `${bad}: tasks[0].gpus: more than one GPU must be a whole number`,
    `${bad}: tasks[0].memory: must be a quantity like "64Gi", "512Mi" or "1G", or a number of bytes`,
    `${bad}: tasks[0].command: required: a shell command string or a non-empty list of strings`,
    `${bad}: tasks[0].env.TIDE_X: reserved: set by Tide`,
    `${broken}: not valid YAML or JSON: line 1, column 53: duplicate key "gpus"`,
    'tide: 2 of 3 spec files invalid',
  ]);
  const json = tide('validate', bad, '-o', 'json');
  assert.equal(json.code, 2);
  const [result] = JSON.parse(json.out) as { file: string; ok: boolean; errors: { path: string }[] }[];
  assert.equal(result?.ok, false);
  assert.deepEqual(result?.errors.map((e) => e.path), ['kind', 'tasks[0].gpus', 'tasks[0].memory', 'tasks[0].command', 'tasks[0].env.TIDE_X']);
  assert.equal(JSON.parse(json.err).error.code, 'invalid_spec');
});

test('tide submit refuses an invalid spec before sending it (the server here is unreachable)', () => {
  const r = tide('submit', bad, '--server', 'http://127.0.0.1:9', '--token', 't-123456789');
  assert.equal(r.code, 2, 'exit 7 would mean it tried to send');
  assert.equal(r.err.trim().split('\n').length, 1);
  assert.match(r.err, /bad\.yaml: invalid job spec: kind: .*tasks\[0\]\.gpus: .*tasks\[0\]\.memory: .*tasks\[0\]\.command: /);
  const sent = tide('submit', good, '--server', 'http://127.0.0.1:9', '--token', 't-123456789');
  assert.equal(sent.code, 7, 'a valid spec is sent');
});
