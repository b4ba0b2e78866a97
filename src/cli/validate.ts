/**
 * `tide validate FILE…`: checks job specs locally with the schema the server uses (api/spec.ts),
 * without a server or a token. Each valid file prints one line (`FILE: ok: job NAME, 4 tasks,
 * 8 GPUs`); each bad field one line on stderr (`FILE: tasks[0].gpus: must be …`); the exit code
 * is 0 when every file is valid, 2 otherwise. With -o json: one result per file on stdout,
 * [{file, ok, errors?}].
 */
import type { Command } from 'commander';
import type { FieldError } from '../api/spec.ts';
import { UserError } from '../util/errors.ts';
import { ApiFailure } from './errorOutput.ts';
import { checkSpec, readSpecFile } from './specFile.ts';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .argument('<files...>', 'job specs, YAML or JSON (- for stdin)')
    .description("Check job specs locally with the server's schema (exit 0: all valid; 2: one line per bad field)")
    .option('-o, --output <format>', 'table (lines) or json', 'table')
    .action(async (files: string[], o: { output: string }) => {
      if (o.output !== 'table' && o.output !== 'json') throw new UserError(`-o: expected table or json, got '${o.output}'`);
      const results: { file: string; ok: boolean; errors?: FieldError[] }[] = [];
      for (const file of files) {
        let value: unknown;
        try {
          value = await readSpecFile(file);
        } catch (e) {
          if (!(e instanceof UserError)) throw e;
          const at = e.message.startsWith(`${file}: `) ? e.message.slice(file.length + 2) : e.message;
          results.push({ file, ok: false, errors: [{ path: '(file)', message: at }] });
          if (o.output === 'table') process.stderr.write(`${e.message}\n`);
          continue;
        }
        const r = await checkSpec(value);
        if (r.ok) {
          results.push({ file, ok: true });
          if (o.output === 'table') {
            const tasks = r.spec.groups.reduce((n, g) => n + g.replicas, 0);
            const gpus = r.spec.groups.reduce((n, g) => n + (g.replicas * g.gpuCount * g.gpuMilli) / 1000, 0);
            const svc = r.spec.service;
            if (svc) process.stdout.write(`${file}: ok: service ${r.spec.name}, ${svc.minReplicas}-${svc.maxReplicas} replicas of ${gpus} GPU${gpus === 1 ? '' : 's'}, autoscaler ${svc.autoscaler}\n`);
            else process.stdout.write(`${file}: ok: job ${r.spec.name}, ${tasks} task${tasks === 1 ? '' : 's'}, ${gpus} GPU${gpus === 1 ? '' : 's'}${r.spec.array > 1 ? ` x ${r.spec.array}` : ''}\n`);
          }
        } else {
          results.push({ file, ok: false, errors: r.errors });
          if (o.output === 'table') process.stderr.write(r.errors.map((e) => `${file}: ${e.path}: ${e.message}\n`).join(''));
        }
      }
      if (o.output === 'json') process.stdout.write(`${JSON.stringify(results)}\n`);
      const bad = results.filter((r) => !r.ok);
      if (bad.length) {
        const fields = bad.flatMap((r) => (r.errors ?? []).map((e) => ({ path: `${r.file}: ${e.path}`, message: e.message })));
        throw new ApiFailure(`${bad.length} of ${results.length} spec file${results.length === 1 ? '' : 's'} invalid`, 0, 2, 'invalid_spec', fields);
      }
    });
}
