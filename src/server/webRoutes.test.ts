/** The dashboard's static files: types, caching, and no way out of the assets folder. */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Fastify from 'fastify';
import { registerWebRoutes } from './webRoutes.ts';

function builtDir(): string {
  const dir = join(tmpdir(), `tide-web-${process.pid}-${Date.now()}`);
  mkdirSync(join(dir, 'assets'), { recursive: true });
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Tide</title><script type="module" src="/assets/index-abc123.js"></script>');
  writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
  writeFileSync(join(dir, 'assets', 'index-abc123.css'), 'body{}');
  writeFileSync(join(dir, 'secret.txt'), 'outside the assets folder');
  return dir;
}

test('index.html is revalidated, hashed assets are cached for a year with their content type', async () => {
  const app = Fastify();
  registerWebRoutes(app, builtDir());
  const index = await app.inject('/');
  assert.equal(index.statusCode, 200);
  assert.match(index.headers['content-type'] as string, /^text\/html/);
  assert.equal(index.headers['cache-control'], 'no-cache');
  assert.match(index.headers['content-security-policy'] as string, /default-src 'self'/);
  const js = await app.inject('/assets/index-abc123.js');
  assert.equal(js.statusCode, 200);
  assert.equal(js.body, 'console.log(1)');
  assert.match(js.headers['content-type'] as string, /^text\/javascript/);
  assert.match(js.headers['cache-control'] as string, /immutable/);
  assert.match((await app.inject('/assets/index-abc123.css')).headers['content-type'] as string, /^text\/css/);
  await app.close();
});

test('nothing outside the assets folder is served, however the path is written', async () => {
  const app = Fastify();
  registerWebRoutes(app, builtDir());
  for (const path of ['/assets/../secret.txt', '/assets/..%2fsecret.txt', '/assets/%2e%2e%2fsecret.txt', '/assets/..%5csecret.txt', '/assets/.', '/assets/nope.js', '/secret.txt', '/assets/index-abc123.js%00.css']) {
    const r = await app.inject(path);
    assert.ok(r.statusCode === 404 || r.statusCode === 400, `${path}: ${r.statusCode}`);
    assert.doesNotMatch(r.body, /outside the assets folder/, path);
  }
  await app.close();
});

test('without a build, / says how to build the dashboard', async () => {
  const app = Fastify();
  registerWebRoutes(app, null);
  const r = await app.inject('/');
  assert.equal(r.statusCode, 200);
  assert.match(r.body, /npm run build/);
  await app.close();
});
