/**
 * A small, strict CSV reader for trace files: comma-separated, a header row, optional double
 * quotes. Every value comes with its line number so errors can say where the problem is.
 */
import { readFileSync } from 'node:fs';
import { inputError, UserError } from '../util/errors.ts';

export interface CsvRow {
  /** 1-based line number in the file. */
  readonly line: number;
  readonly get: (column: string) => string;
}

export interface CsvTable {
  readonly file: string;
  readonly header: readonly string[];
  readonly rows: readonly CsvRow[];
}

function splitLine(text: string): string[] {
  if (!text.includes('"')) return text.split(',');
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    }
    else cur += c;
  }
  out.push(cur);
  return out;
}

/** Reads a CSV file and checks that `required` columns are present in its header. */
export function readCsv(file: string, required: readonly string[]): CsvTable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${file}: cannot read (${code === 'ENOENT' ? 'no such file' : (code ?? String(e))})`);
  }
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) throw inputError(file, 1, null, 'empty file: expected a header row');
  const headerLine = lines[0] as string;
  const header = splitLine(headerLine).map((h) => h.trim());
  if (header.length === 1 && /[;\t|]/.test(headerLine)) {
    const found = headerLine.includes(';') ? 'semicolons' : headerLine.includes('\t') ? 'tabs' : "'|'";
    throw inputError(file, 1, null, `wrong delimiter: columns are separated by ${found}, expected commas`);
  }
  const missing = required.filter((c) => !header.includes(c));
  if (missing.length > 0) {
    throw inputError(file, 1, missing[0] as string, `missing column (header has: ${header.join(', ')})`);
  }
  if (lines.length === 1) throw inputError(file, 2, null, 'no data rows after the header');
  const index = new Map(header.map((h, i) => [h, i]));
  const rows: CsvRow[] = [];
  for (let i = 1; i < lines.length; i++) {
    const raw = lines[i] as string;
    if (raw.trim() === '') continue;
    const cells = splitLine(raw);
    const line = i + 1;
    if (cells.length !== header.length) {
      throw inputError(file, line, null, `expected ${header.length} values, found ${cells.length}`);
    }
    rows.push({ line, get: (column) => (cells[index.get(column) ?? -1] ?? '').trim() });
  }
  return { file, header, rows };
}

/** A non-negative integer cell up to `max`, or an error naming file, line and field. */
export function intCell(table: CsvTable, row: CsvRow, column: string, max = Number.MAX_SAFE_INTEGER): number {
  const raw = row.get(column);
  if (raw === '') throw inputError(table.file, row.line, column, 'empty value, expected a non-negative integer');
  const value = Number(raw);
  if (!Number.isFinite(value) || !/^[+-]?\d+(\.0*)?$/.test(raw)) {
    throw inputError(table.file, row.line, column, `'${raw}' is not an integer`);
  }
  if (value < 0) throw inputError(table.file, row.line, column, `${value} is negative`);
  if (value > max) throw inputError(table.file, row.line, column, `${raw} is over ${max}`);
  return value + 0; // + 0: '-0' is 0
}
