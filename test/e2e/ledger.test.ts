/** The soak's instruments: the task ledger (real shell tasks, real /proc probes) and the TCP proxy (real sockets). */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { sleep, tempDir, waitFor } from './harness.ts';
import { Ledger, ledgerCommand, ledgerViolations } from './ledger.ts';
import { TcpProxy } from './tcpProxy.ts';

const env = (runId: string, job: string, attempt: number, node = 'n1', gpus = '0') => ({
  ...process.env, TIDE_RUN_ID: runId, TIDE_JOB_ID: job, TIDE_ATTEMPT: String(attempt), TIDE_TASK_INDEX: '0', TIDE_NODE: node, CUDA_VISIBLE_DEVICES: gpus,
});

function ledgerFile(): string {
  const file = join(tempDir('ledger'), 'ledger.txt');
  writeFileSync(file, '');
  return file;
}

test('a task writes start and end lines the ledger reads; a SIGKILLed one is seen alive by probes, then gone', async () => {
  const file = ledgerFile();
  const ok = spawn('/bin/sh', ['-c', ledgerCommand(file, 1000, 'sleep 0.2')], { env: env('1.0.0', '1', 0) });
  await new Promise((r) => ok.on('exit', r));
  const killed = spawn('/bin/sh', ['-c', ledgerCommand(file, 500, 'sleep 30')], { env: env('2.0.0', '2', 0, 'n1', '1'), detached: true });
  const ledger = new Ledger(file);
  await waitFor('start line', async () => (ledger.read(), ledger.runs.has('2.0.0') ? true : undefined));
  const first = ledger.runs.get('1.0.0');
  assert.equal(first?.rc, 0);
  assert.ok(first.end !== null && first.end >= first.start);
  const run = ledger.runs.get('2.0.0');
  assert.deepEqual([run?.jobId, run?.attempt, run?.node, run?.gpus, run?.milli, run?.pid], ['2', 0, 'n1', [1], 500, killed.pid]);
  await sleep(50);
  ledger.probe();
  assert.ok(run!.aliveUntil > run!.start, 'a probe extends the span it was alive for');
  process.kill(-(killed.pid as number), 'SIGKILL');
  await new Promise((r) => killed.on('exit', r));
  const seenAlive = run!.aliveUntil;
  ledger.probe();
  assert.equal(run?.gone, true);
  assert.equal(run?.end, null, 'SIGKILL leaves no end line');
  assert.equal(run?.aliveUntil, seenAlive);
  assert.equal(ledger.malformed, 0);
});

test('ledger checks: overlapping attempts of one job and a GPU over 1000 milli are violations; sequential runs and two halves are not', () => {
  const file = ledgerFile();
  const start = (run: string, job: string, attempt: number, node: string, gpus: string, milli: number, at: number) => `start ${run} ${job} ${attempt} 0 ${node} ${gpus} ${milli} 1 ${at}\n`;
  appendFileSync(file, [
    // job 1: attempt 0 on n1 ends at 200, attempt 1 on n2 starts at 300: fine.
    start('1.0.0', '1', 0, 'n1', '0', 1000, 100), 'end 1.0.0 200 137\n', start('1.1.0', '1', 1, 'n2', '0', 1000, 300), 'end 1.1.0 400 0\n',
    // job 2: attempt 1 starts on n2 while attempt 0 still runs on n1 (a partitioned node): a double run.
    start('2.0.0', '2', 0, 'n1', '1', 1000, 100), 'end 2.0.0 900 0\n', start('2.1.0', '2', 1, 'n2', '1', 1000, 500), 'end 2.1.0 950 0\n',
    // n3 GPU 0: two halves at once, fine; a third quarter overlapping both is over capacity.
    start('3.0.0', '3', 0, 'n3', '0', 500, 100), 'end 3.0.0 500 0\n', start('4.0.0', '4', 0, 'n3', '0', 500, 150), 'end 4.0.0 600 0\n',
    start('5.0.0', '5', 0, 'n3', '0', 250, 200), 'end 5.0.0 300 0\n',
    // n3 GPU 1: back to back (one ends at 700, the next starts at 700), fine.
    start('6.0.0', '6', 0, 'n3', '1', 1000, 100), 'end 6.0.0 700 0\n', start('7.0.0', '7', 0, 'n3', '1', 1000, 700), 'end 7.0.0 800 0\n',
  ].join(''));
  const ledger = new Ledger(file);
  ledger.read();
  const found = ledgerViolations(ledger.runs.values());
  assert.deepEqual(found.map((v) => v.kind).sort(), ['double-run', 'gpu-shared']);
  assert.match(found.find((v) => v.kind === 'double-run')?.message ?? '', /job 2 ran twice at once: 2\.0\.0 .* and 2\.1\.0/);
  assert.match(found.find((v) => v.kind === 'gpu-shared')?.message ?? '', /GPU n3\/0 over capacity \(1250 milli\)/);
});

test('tcp proxy: forwards, refuses when cut (reset), holds without answering when black-holed, forwards again when healed', async () => {
  const upstream = createServer((_req, res) => res.end('pong'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const port = (upstream.address() as { port: number }).port;
  const proxy = new TcpProxy(port);
  await proxy.listen();
  const get = async (ms = 2000): Promise<string> => (await fetch(`${proxy.url}/`, { signal: AbortSignal.timeout(ms) })).text();
  try {
    assert.equal(await get(), 'pong');
    proxy.cut('reset');
    await assert.rejects(get(), /fetch failed/);
    proxy.cut('blackhole');
    await assert.rejects(get(300), (e: Error) => e.name === 'TimeoutError');
    proxy.heal();
    assert.equal(await get(), 'pong');
  } finally {
    await proxy.close();
    await new Promise((r) => upstream.close(r));
  }
});
