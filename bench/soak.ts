/**
 * The fault soak (test/e2e/soak.ts): `npm run soak [-- --minutes 5 --seed 1 --database postgres|sqlite
 * --json FILE]`. A live server and agents under random kill -9s, PostgreSQL restarts and
 * partitions, checked from the tasks' own ledger and the API. Prints a table (and JSON with
 * --json); exits 1 on any violation, 2 on bad arguments.
 */
import { writeFileSync } from 'node:fs';
import { benchArgs } from './args.ts';
import Table from 'cli-table3';
import { FAULT_KINDS, runSoak, type FaultKind } from '../test/e2e/soak.ts';

function usage(message: string): never {
  console.error(`soak: ${message}\nusage: npm run soak -- [--minutes 5] [--seed 1] [--database postgres|sqlite] [--faults ${FAULT_KINDS.join(',')}] [--json FILE] [--keep]`);
  process.exit(2);
}

const { values } = benchArgs('soak', { minutes: { type: 'string', default: '5' }, seed: { type: 'string', default: '1' }, database: { type: 'string', default: 'postgres' }, faults: { type: 'string' }, json: { type: 'string' }, keep: { type: 'boolean' } });
const minutes = Number(values['minutes']);
if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 24 * 60) usage(`--minutes: must be a number of minutes above 0, got ${values['minutes']}`);
const seed = Number(values['seed']);
if (!Number.isInteger(seed)) usage(`--seed: must be an integer, got ${values['seed']}`);
const database = values['database'];
if (database !== 'postgres' && database !== 'sqlite') usage(`--database: must be postgres or sqlite, got ${database}`);
const kinds = typeof values['faults'] === 'string' ? values['faults'].split(',') : [...FAULT_KINDS];
for (const k of kinds) if (!(FAULT_KINDS as readonly string[]).includes(k)) usage(`--faults: unknown fault ${k} (known: ${FAULT_KINDS.join(', ')})`);

// Ctrl-C: exit through process.exit so the throwaway PostgreSQL is removed (its exit hook).
process.on('SIGINT', () => process.exit(130));

const report = await runSoak({ durationMs: minutes * 60_000, seed, database, kinds: kinds as FaultKind[], keep: values['keep'] === true, log: (s) => console.error(s) });

const table = new Table({ head: ['', database], style: { head: [], border: [] } });
table.push(['seconds', report.seconds], ['fault rounds', report.rounds]);
table.push(['jobs submitted', report.jobs.submitted], ['  succeeded', report.jobs.succeeded], ['  failed', report.jobs.failed], ['  cancelled', report.jobs.cancelled], ['  unfinished', report.jobs.unfinished], ['  requeued at least once', report.jobs.requeued], ['  run again after an unseen success', report.jobs.rerunAfterSuccess], ['task runs (ledger)', report.runs]);
table.push(['agent kill: longest silence (s)', (report.agentDown.maxMs / 1000).toFixed(1)], ['agent kills past the node lease', report.agentDown.beyondLease]);
for (const [k, n] of Object.entries(report.faults)) table.push([`fault: ${k}`, n]);
for (const [k, n] of Object.entries(report.violations)) table.push([`violation: ${k}`, n]);
console.log(table.toString());
for (const d of report.details.slice(0, 30)) console.log(`  ${d}`);
if (report.details.length > 30) console.log(`  … ${report.details.length - 30} more (see --json)`);
if (report.dataDir) console.log(`files kept for inspection: ${report.dataDir}`);
if (typeof values['json'] === 'string') writeFileSync(values['json'], JSON.stringify(report, null, 2) + '\n');
process.exitCode = report.details.length === 0 ? 0 : 1;
