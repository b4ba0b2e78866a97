/** Parsers for command-line values; each throws a UserError naming the flag. */
import { UserError } from '../util/errors.ts';

/** "42-51", "0,2,5" or "7" → [42, …, 51] etc. */
export function parseSeeds(flag: string, value: string): number[] {
  const seeds: number[] = [];
  for (const part of value.split(',')) {
    const m = /^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?$/.exec(part);
    if (!m) throw new UserError(`${flag}: '${part}' is not a seed or a range like 42-51`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new UserError(`${flag}: range ${part} runs backwards`);
    if (to - from > 10_000) throw new UserError(`${flag}: range ${part} is too long`);
    for (let s = from; s <= to; s++) seeds.push(s);
  }
  return seeds;
}

/** A comma-separated list of names, each one of `known`. */
export function parseNames(flag: string, value: string, known: readonly string[]): string[] {
  const names = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new UserError(`${flag}: empty list`);
  for (const n of names) {
    if (!known.includes(n)) throw new UserError(`${flag}: unknown name '${n}' (known: ${known.join(', ')})`);
  }
  return [...new Set(names)];
}

export function parsePositiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`${flag}: expected a positive integer, got '${value}'`);
  return n;
}
