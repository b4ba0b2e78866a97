/**
 * What the one schema costs: loading Ajv and TypeBox, compiling each schema once (at the first
 * request that needs it: server start stays as it was), and validating per request (a typical
 * job spec, a bad one naming 6 fields, a 1,024-group spec, a heartbeat of an 8-GPU node with 8
 * reports), against the hand-written checks it replaced when their sources are given
 * (`--before DIR`: a checkout of the commit before, e.g. `git archive cef2ce3 | tar -x -C DIR`).
 *
 *   npx tsx bench/schemaCheck.ts [--before DIR] [--n 20000]
 */
import { performance } from 'node:perf_hooks';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { benchArgs, intFlag } from './args.ts';

const { values } = benchArgs('bench:schema-check', { before: { type: 'string' }, n: { type: 'string', default: '20000' } });
const N = intFlag('bench:schema-check', 'n', values.n, 20_000);

const t0 = performance.now();
await import('ajv');
const tAjv = performance.now() - t0;
const t1 = performance.now();
await import('typebox');
const tTypebox = performance.now() - t1;
const t2 = performance.now();
const spec = await import('../src/api/spec.ts');
const agent = await import('../src/api/agentSchema.ts');
const api = await import('../src/api/apiSchemas.ts');
const config = await import('../src/api/configSchema.ts');
const { validatorOf } = await import('../src/api/schemaCheck.ts');
const tModules = performance.now() - t2;

const compileMs = (schema: object): number => {
  const t = performance.now();
  validatorOf(schema);
  return performance.now() - t;
};
const compiles: [string, number][] = [
  ['job spec (first: includes new Ajv())', compileMs((await import('../src/api/specSchema.ts')).JobSpecSchema)],
  ['agent registration', compileMs(agent.RegistrationSchema)],
  ['agent heartbeat', compileMs(agent.HeartbeatSchema)],
  ['token, tenant, queue bodies', compileMs(api.TokenRequestSchema) + compileMs(api.TenantRequestSchema) + compileMs(api.QueueRequestSchema)],
  ['cluster config', compileMs(config.ClusterConfigSchema)],
];

const good = { name: 'llm', kind: 'training', priority: 5, timeLimit: '2h', tasks: [{ name: 'worker', replicas: 4, gpus: 8, gpuModels: ['H100'], cpu: 32, memory: '512Gi', command: ['python', 'train.py'], env: { LR: 0.1, EPOCHS: 3 } }, { name: 'eval', gpus: 0.25, command: 'python eval.py' }] };
const bad = { name: '', kind: 'serving', priority: 1.5, extra: 1, tasks: [{ gpus: 1.5, memory: 'lots', env: { TIDE_JOB_ID: 'x' } }] };
const big = { name: 'wide', tasks: Array.from({ length: 1024 }, (_, i) => ({ name: `g${i}`, gpus: 1, command: ['run', String(i)], env: { I: i } })) };
const heartbeat = {
  node: 'n1',
  reports: Array.from({ length: 8 }, (_, i) => ({ runId: `${i}.0.0`, state: 'running', pid: 1000 + i, exitCode: null, startedAt: 1_700_000_000_000, progress: { step: 10, totalSteps: 100 } })),
  telemetry: Array.from({ length: 8 }, (_, index) => ({ index, utilization: 90, memoryUsedMib: 40_000, powerWatts: 500 })),
};

type Parse = (v: unknown) => { ok: boolean };
const perCall = (f: Parse, v: unknown, n: number): number => {
  for (let i = 0; i < Math.min(n, 1000); i++) f(v); // warm up
  const t = performance.now();
  for (let i = 0; i < n; i++) f(v);
  return ((performance.now() - t) / n) * 1000;
};

let old: { parseJobSpec: Parse; parseHeartbeat: Parse } | null = null;
if (values.before) {
  const specFile = join(values.before, 'src/api/spec.ts');
  const agentFile = join(values.before, 'src/api/agentSchema.ts');
  if (!existsSync(specFile)) throw new Error(`--before: no ${specFile}`);
  old = { parseJobSpec: (await import(specFile)).parseJobSpec, parseHeartbeat: (await import(agentFile)).parseHeartbeat };
}
const cases: [string, 'spec' | 'hb', unknown, number][] = [
  ['typical job spec (2 groups)', 'spec', good, N],
  ['bad job spec (6 fields named)', 'spec', bad, N],
  ['1,024-group job spec', 'spec', big, Math.max(1, Math.round(N / 500))],
  ['heartbeat (8 GPUs, 8 reports)', 'hb', heartbeat, N],
];

console.log(`Loading (this process, first import): ajv ${tAjv.toFixed(1)} ms, typebox ${tTypebox.toFixed(1)} ms, Tide's schema modules ${tModules.toFixed(1)} ms`);
console.log('\nCompile, once per schema (ms)');
for (const [what, ms] of compiles) console.log(`  ${what.padEnd(40)} ${ms.toFixed(1).padStart(7)}`);
console.log(`\nPer call (µs), mean of n calls after a warm-up${old ? '; before: the hand-written checks' : ''}`);
console.log(`  ${'input'.padEnd(34)} ${'n'.padStart(6)} ${'schema'.padStart(9)}${old ? ` ${'before'.padStart(9)}` : ''}`);
for (const [what, kind, v, n] of cases) {
  const now = perCall(kind === 'spec' ? spec.parseJobSpec : agent.parseHeartbeat, v, n);
  const was = old ? perCall(kind === 'spec' ? old.parseJobSpec : old.parseHeartbeat, v, n) : null;
  console.log(`  ${what.padEnd(34)} ${String(n).padStart(6)} ${now.toFixed(1).padStart(9)}${was === null ? '' : ` ${was.toFixed(1).padStart(9)}`}`);
}
