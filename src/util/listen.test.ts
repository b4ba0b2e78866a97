import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exposureWarning, isLoopback, isWildcard, parseListen, urlHost } from './listen.ts';

test('--listen takes HOST, HOST:PORT, :PORT, [IPv6]:PORT and a bare IPv6 address', () => {
  assert.deepEqual(parseListen('--listen', '0.0.0.0'), { host: '0.0.0.0' });
  assert.deepEqual(parseListen('--listen', '10.0.0.5:9000'), { host: '10.0.0.5', port: 9000 });
  assert.deepEqual(parseListen('--listen', ':8471'), { port: 8471 });
  assert.deepEqual(parseListen('--listen', 'gpu-01.example:80'), { host: 'gpu-01.example', port: 80 });
  assert.deepEqual(parseListen('--listen', '[::1]:8470'), { host: '::1', port: 8470 });
  assert.deepEqual(parseListen('--listen', '[::]'), { host: '::' });
  assert.deepEqual(parseListen('--listen', 'fd00::5'), { host: 'fd00::5' });
});

test('a bad --listen is an error naming the flag and the value', () => {
  assert.throws(() => parseListen('--listen', '127.0.0.1:70000'), /--listen: port must be 0-65535, got '70000'/);
  assert.throws(() => parseListen('--listen', '127.0.0.1:'), /--listen: port must be 0-65535, got ''/);
  assert.throws(() => parseListen('--listen', '[10.0.0.1]:80'), /--listen: brackets hold an IPv6 address, got '\[10\.0\.0\.1\]:80'/);
  assert.throws(() => parseListen('--listen', 'a:b:c'), /--listen: an IPv6 address with a port goes in brackets/);
  assert.throws(() => parseListen('--listen', 'host name'), /--listen: not a host name or IP address/);
  assert.throws(() => parseListen('--host', ''), /--host: empty/);
});

test('wildcards and loopback; a URL puts IPv6 in brackets; only a non-loopback address is warned about', () => {
  assert.equal(isWildcard('0.0.0.0'), true);
  assert.equal(isWildcard('::'), true);
  assert.equal(isWildcard('10.0.0.1'), false);
  for (const h of ['127.0.0.1', '127.0.0.4', '::1', 'localhost', '::ffff:127.0.0.1']) assert.equal(isLoopback(h), true, h);
  for (const h of ['0.0.0.0', '10.0.0.1', '::', '128.0.0.1']) assert.equal(isLoopback(h), false, h);
  assert.equal(urlHost('::1'), '[::1]');
  assert.equal(urlHost('10.0.0.1'), '10.0.0.1');
  assert.equal(exposureWarning('the API', '127.0.0.2'), null);
  assert.match(exposureWarning('the API', '0.0.0.0') ?? '', /^warning: the API listens on every interface \(0\.0\.0\.0\) over plain HTTP/);
  assert.match(exposureWarning('the API', '10.0.0.1') ?? '', /^warning: the API listens on 10\.0\.0\.1 over plain HTTP/);
});
