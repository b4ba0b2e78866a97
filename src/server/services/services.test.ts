import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJobSpec } from '../../api/spec.ts';
import type { Job } from '../../api/types.ts';
import { ScrapeTracker } from './observe.ts';
import { readMetrics } from './promText.ts';
import { freeOrdinal, freePort, portOf, replicaSpec, replicaUrl, REPLICA_PORTS } from './replicaSpec.ts';

test('Prometheus text: the samples of the wanted metrics summed over labels; comments, others, NaN and junk skipped', () => {
  const text = [
    '# HELP tide_requests_total Requests.',
    '# TYPE tide_requests_total counter',
    'tide_requests_total{path="/a"} 10',
    'tide_requests_total{path="/b",code="200"} 5 1700000000000',
    'tide_queue_length 3',
    'tide_queue_length{x="y"} NaN',
    'tide_requests_in_flight +Inf',
    'other_total 99',
    'tide_requests_total_extra 7',
    'garbage line here',
    'tide_request_service_seconds_sum 2.5',
    'tide_request_service_seconds_count 10',
  ].join('\n');
  const m = readMetrics(text, ['tide_requests_total', 'tide_queue_length', 'tide_requests_in_flight', 'tide_request_service_seconds_sum', 'tide_request_service_seconds_count']);
  assert.deepEqual(Object.fromEntries(m), { tide_requests_total: 15, tide_queue_length: 3, tide_request_service_seconds_sum: 2.5, tide_request_service_seconds_count: 10 });
});

test('arrivals are counter increases per replica run (a new run counts from 0, a reset counter again from 0); the service time is learned', () => {
  const t = new ScrapeTracker({ rate: 'r', queue: 'q', inFlight: 'f', serviceTime: 's' });
  const v = (r: number, q: number, f: number, sum: number, count: number) => new Map([['r', r], ['q', q], ['f', f], ['s_sum', sum], ['s_count', count]]);
  const first = t.round([{ run: '1.0', values: v(10, 2, 1, 4, 8) }, { run: '2.0', values: v(4, 0, 0, 2, 4) }]);
  assert.deepEqual([first.arrivals, first.queueLength, first.failed], [14, 2, 0]);
  assert.equal(t.serviceSeconds, 0.5);
  const second = t.round([{ run: '1.0', values: v(25, 1, 1, 4 + 15, 8 + 10) }, { run: '2.0' }, { run: '3.0', values: v(3, 0, 2, 0, 0) }]);
  assert.deepEqual([second.arrivals, second.failed, second.inFlight.get('3.0')], [15 + 3, 1, 2]);
  assert.ok(Math.abs((t.serviceSeconds ?? 0) - (0.7 * 0.5 + 0.3 * 1.5)) < 1e-9, `${t.serviceSeconds}`);
  // Replica 2 failed its scrape: its last counter is kept; it restarted meanwhile (4 → 1).
  const third = t.round([{ run: '1.0', values: v(25, 0, 0, 19, 18) }, { run: '2.0', values: v(1, 0, 0, 0, 0) }]);
  assert.equal(third.arrivals, 1);
});

test('a replica is its service\'s task group with a port of its own; the server reaches it only at its node\'s host and declared paths', () => {
  const parsed = parseJobSpec({ name: 'chat', kind: 'service', queue: 'serve', service: { maxReplicas: 4 }, tasks: [{ gpus: 0.5, command: 'serve', env: { A: '1' } }] });
  assert.ok(parsed.ok);
  const service = { id: '12', spec: parsed.spec } as unknown as Job;
  const r = replicaSpec(service, 2, 20005);
  assert.equal(r.name, 'chat-2');
  assert.equal(r.replicaOf, '12');
  assert.equal(r.preemptible, false);
  assert.deepEqual(r.groups[0]?.env, { A: '1', TIDE_SERVICE_PORT: '20005', TIDE_SERVICE_ID: '12' });
  assert.deepEqual([r.groups[0]?.replicas, r.groups[0]?.gpuMilli], [1, 500]);
  assert.equal(portOf(r), 20005);
  assert.equal(freePort(new Set([REPLICA_PORTS.first, REPLICA_PORTS.first + 1])), REPLICA_PORTS.first + 2);
  assert.equal(freePort(new Set([21000]), { first: 21000, last: 21001 }), 21001, 'within --service-ports');
  assert.equal(freePort(new Set([21000, 21001]), { first: 21000, last: 21001 }), null, 'all of the range taken');
  assert.equal(freeOrdinal(['chat-0', 'chat-2', 'other-1'], 'chat'), 1);
  assert.equal(replicaUrl('http://127.0.0.2:9100', r, '/metrics'), 'http://127.0.0.2:20005/metrics');
  assert.equal(replicaUrl('http://[::1]:9100', r, '/healthz'), 'http://[::1]:20005/healthz');
  for (const path of ['metrics', '//evil.example/x', '/a/../b', '/x?y=1', '/x#y', '@evil/']) assert.equal(replicaUrl('http://127.0.0.2:9100', r, path), null, path);
  assert.equal(replicaUrl(null, r, '/metrics'), null);
  assert.equal(replicaUrl('not a url', r, '/metrics'), null);
  const { TIDE_SERVICE_PORT: _, ...noPort } = r.groups[0]?.env ?? {};
  assert.equal(replicaUrl('http://127.0.0.2:9100', { ...r, groups: [{ ...(r.groups[0] as (typeof r.groups)[number]), env: noPort }] }, '/metrics'), null, 'no port of its own: not reached');
});
