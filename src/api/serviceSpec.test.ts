import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LOAD_P90_RATIO, parseJobSpec } from './spec.ts';

const base = { name: 'chat', kind: 'service', tasks: [{ gpus: 0.5, command: 'serve' }] };

test('a service spec is normalised with its defaults; a service is not preemptible', () => {
  const r = parseJobSpec({ ...base, service: { maxReplicas: 4 } });
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.spec.preemptible, false);
  assert.deepEqual(r.spec.service, {
    minReplicas: 1, maxReplicas: 4, concurrency: 1, serviceSeconds: null,
    slo: { quantile: 0.99, waitSeconds: 5, windowSeconds: 300 },
    loadSeconds: { median: 30, p90: 30 * LOAD_P90_RATIO }, evictSeconds: 30, scaleDownDelaySeconds: 0,
    readiness: { path: '/healthz' },
    metrics: { path: '/metrics', rate: 'tide_requests_total', queue: 'tide_queue_length', inFlight: 'tide_requests_in_flight', serviceTime: 'tide_request_service_seconds', tokens: 'tide_tokens_total' },
    autoscaler: 'reactive', options: {},
  });
  const full = parseJobSpec({ ...base, service: { minReplicas: 2, maxReplicas: 8, concurrency: 4, serviceSeconds: 16.4, slo: { quantile: 0.999, waitSeconds: 2, windowSeconds: 60 }, loadSeconds: { median: 22.7, p90: 42 }, scaleDownDelaySeconds: 300, metrics: { rate: 'vllm:request_success_total', queue: 'vllm:num_requests_waiting', tokens: 'vllm:generation_tokens_total' }, options: { margin: 0.25 } } });
  assert.ok(full.ok, JSON.stringify(full));
  assert.deepEqual([full.spec.service?.loadSeconds, full.spec.service?.metrics.rate, full.spec.service?.metrics.tokens, full.spec.service?.options], [{ median: 22.7, p90: 42 }, 'vllm:request_success_total', 'vllm:generation_tokens_total', { margin: 0.25 }]);
});

test('every bad service field is named, and what a service cannot be', () => {
  const paths = (v: unknown): string[] => {
    const r = parseJobSpec(v);
    assert.equal(r.ok, false, JSON.stringify(v));
    return r.ok ? [] : r.errors.map((e) => e.path).sort();
  };
  assert.deepEqual(paths({ ...base }), ['service']);
  assert.deepEqual(paths({ ...base, kind: 'training', service: { maxReplicas: 2 } }), ['service']);
  assert.deepEqual(paths({ ...base, service: {} }), ['service.maxReplicas']);
  assert.deepEqual(paths({ ...base, service: { minReplicas: 3, maxReplicas: 2 } }), ['service.maxReplicas']);
  assert.deepEqual(paths({ ...base, service: { maxReplicas: 2, autoscaler: 'psychic' } }), ['service.autoscaler']);
  assert.deepEqual(paths({ ...base, service: { maxReplicas: 2, concurrency: 0, serviceSeconds: -1, slo: { quantile: 1.5, waitSeconds: 0 }, loadSeconds: { median: 5, p90: 1 }, options: { margin: 'big' } } }).sort(),
    ['service.concurrency', 'service.loadSeconds.p90', 'service.options.margin', 'service.serviceSeconds', 'service.slo.quantile', 'service.slo.waitSeconds']);
  // Only paths on the replica's own port: no host, no fixed port, no traversal, query or fragment.
  for (const path of ['http://169.254.169.254/latest', '//evil/x', '/a/../etc', '/m?x=1', '/m#f', 'metrics', '/a b']) {
    assert.deepEqual(paths({ ...base, service: { maxReplicas: 2, metrics: { path } } }), ['service.metrics.path'], path);
  }
  assert.deepEqual(paths({ ...base, service: { maxReplicas: 2, readiness: { path: '/ok', port: 22 }, metrics: { rate: 'bad name', tokens: 'tokens{x}' } } }), ['service.metrics.rate', 'service.metrics.tokens', 'service.readiness.port']);
  assert.deepEqual(paths({ ...base, preemptible: true, timeLimit: '1h', service: { maxReplicas: 2 }, tasks: [{ replicas: 2, minReplicas: 1, command: 'x' }, { name: 'b', command: 'y' }] }),
    ['preemptible', 'tasks', 'tasks[0].minReplicas', 'tasks[0].replicas', 'timeLimit']);
  assert.deepEqual(paths({ ...base, array: 3, service: { maxReplicas: 2 } }), ['array']);
});
