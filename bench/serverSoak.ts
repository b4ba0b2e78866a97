/**
 * The kill -9 soak: many rounds of the e2e crash experiment (server SIGKILLed at random moments
 * while jobs are submitted and run), on SQLite or on PostgreSQL (`--database-url`, an empty schema).
 * `npm run soak:server [-- --rounds 20 --jobs 50 --seed 1 --database-url postgres://…]`
 */
import { crashRounds } from '../test/e2e/crashRounds.ts';
import { benchArgs } from './args.ts';

const { values } = benchArgs('soak:server', { rounds: { type: 'string', default: '20' }, jobs: { type: 'string', default: '50' }, seed: { type: 'string', default: '1' }, 'database-url': { type: 'string' } });
const started = performance.now();
const report = await crashRounds({ rounds: Number(values.rounds), jobsPerRound: Number(values.jobs), seed: Number(values.seed), gpus: '16xH100', ...(values['database-url'] ? { databaseUrl: values['database-url'] } : {}), log: (s) => console.error(s) });
console.log(JSON.stringify({ ...report, seconds: Math.round((performance.now() - started) / 1000) }, null, 2));
process.exitCode = report.problems.length === 0 ? 0 : 1;
