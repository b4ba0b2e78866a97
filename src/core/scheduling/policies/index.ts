/** The registry of job schedulers, by the names users pass to --policies. */
import type { JobSchedulerFactory } from '../scheduler.ts';
import { fifo } from './fifo.ts';
import { maxMinRounds } from './gavel.ts';
import { tide } from './tide.ts';

export const jobSchedulers: Readonly<Record<string, JobSchedulerFactory>> = {
  fifo,
  'fifo-perf': (ctx) => fifo({ ...ctx, options: { ...ctx.options, models: 'fastest' } }),
  las: (ctx) => maxMinRounds(ctx, false),
  gavel: (ctx) => maxMinRounds(ctx, true),
  tide,
};

export const DEFAULT_JOB_SCHEDULER = 'tide';

export function jobSchedulerNames(): string[] {
  return Object.keys(jobSchedulers);
}

export function getJobScheduler(name: string): JobSchedulerFactory | undefined {
  return Object.hasOwn(jobSchedulers, name) ? jobSchedulers[name] : undefined;
}
