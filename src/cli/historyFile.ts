/**
 * `tide scale ID --history FILE`: a service's rate history as a Prometheus export gives it, the
 * CSV `t_seconds,value` (Unix time, requests per second; or t_seconds and one other column),
 * read and checked here with every bad row named by its line, then sent to
 * PUT /v1/jobs/{id}/history. A refusal by the server that names `points[i]` is told by line too.
 */
import { statSync } from 'node:fs';
import { checkHistory, HISTORY_BODY_LIMIT, MAX_HISTORY_POINTS } from '../api/serviceHistory.ts';
import { readCsv } from '../traces/csv.ts';
import { inputError, UserError } from '../util/errors.ts';
import type { FieldProblem } from './errorOutput.ts';

export interface HistoryFile {
  readonly file: string;
  readonly points: [number, number][];
  /** The file's line of each point. */
  readonly lines: number[];
}

/** Reads and checks a history CSV; throws a UserError naming the file and line of the first problems. */
export function readHistoryFile(file: string): HistoryFile {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (e) {
    throw new UserError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message})`);
  }
  if (size > HISTORY_BODY_LIMIT) throw new UserError(`${file}: ${(size / 1024 / 1024).toFixed(1)} MiB, at most ${HISTORY_BODY_LIMIT / 1024 / 1024} MiB (${MAX_HISTORY_POINTS} rows): send a coarser step or fewer days`);
  const table = readCsv(file, ['t_seconds']);
  const others = table.header.filter((h) => h !== 't_seconds');
  const column = others.includes('value') ? 'value' : others.length === 1 ? others[0] : undefined;
  if (column === undefined) throw inputError(file, 1, null, `expected the columns t_seconds,value (found ${table.header.join(',')})`);
  if (table.rows.length > MAX_HISTORY_POINTS) throw new UserError(`${file}: ${table.rows.length} rows, at most ${MAX_HISTORY_POINTS}: send a coarser step or fewer days`);
  const points: [number, number][] = [];
  const lines: number[] = [];
  const problems: { line: number; text: string }[] = [];
  for (const row of table.rows) {
    const tRaw = row.get('t_seconds').trim();
    const vRaw = row.get(column).trim();
    const t = tRaw === '' ? NaN : Number(tRaw);
    const v = vRaw === '' ? NaN : Number(vRaw);
    if (!Number.isFinite(t)) problems.push({ line: row.line, text: `${file}:${row.line}: field 't_seconds': '${tRaw.slice(0, 40)}' is not a number of seconds` });
    if (!Number.isFinite(v)) problems.push({ line: row.line, text: `${file}:${row.line}: field '${column}': '${vRaw.slice(0, 40)}' is not a number` });
    if (!Number.isFinite(t) || !Number.isFinite(v)) continue;
    points.push([t, v]);
    lines.push(row.line);
  }
  // The rows that are numbers are checked as the server checks them (order, range, size), by line.
  for (const p of checkHistory({ points }, null)) {
    const m = /^points\[(\d+)\]/.exec(p.path);
    problems.push({ line: m ? (lines[Number(m[1])] ?? 0) : Number.MAX_SAFE_INTEGER, text: atLines(file, lines, [p])[0] as string });
  }
  problems.sort((a, b) => a.line - b.line);
  if (problems.length > 0) throw new UserError(problems.length > 10 ? [...problems.slice(0, 10).map((p) => p.text), `… and ${problems.length - 10} more`].join('\n') : problems.map((p) => p.text).join('\n'));
  return { file, points, lines };
}

/** Field problems (`points[i]…`) told by the file's line. */
export function atLines(file: string, lines: readonly number[], problems: readonly FieldProblem[]): string[] {
  return problems.map((p) => {
    const m = /^points\[(\d+)\](?:\[([01])\])?$/.exec(p.path);
    if (!m) return `${file}: ${p.path === 'points' ? '' : `${p.path}: `}${p.message}`;
    const line = lines[Number(m[1])];
    const field = m[2] === undefined ? '' : `field '${m[2] === '0' ? 't_seconds' : 'value'}': `;
    return `${file}:${line ?? '?'}: ${field}${p.message}`;
  });
}
