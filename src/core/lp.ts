/**
 * Linear programmes as plain data, and the port through which core solves them. Core builds
 * the programme; whoever runs core (simulator, server, tests) passes in a solver, so core
 * stays pure and the solver library stays outside it.
 */

/** A term `coef · variable`. */
export interface LpTerm {
  readonly variable: string;
  readonly coef: number;
}

export interface LpConstraint {
  readonly name: string;
  readonly terms: readonly LpTerm[];
  readonly op: '<=' | '>=' | '=';
  readonly rhs: number;
}

/**
 * Variables are non-negative unless listed in `free`. Names: letters, digits and underscores,
 * starting with a letter.
 */
export interface LinearProgram {
  readonly sense: 'maximize' | 'minimize';
  readonly objective: readonly LpTerm[];
  readonly constraints: readonly LpConstraint[];
  readonly free?: readonly string[];
}

export type LpResult =
  | { readonly status: 'optimal'; readonly objective: number; readonly values: ReadonlyMap<string, number> }
  | { readonly status: 'infeasible' | 'unbounded' | 'error'; readonly message: string };

/** Solves a linear programme; deterministic for the same input. */
export interface LpSolver {
  solve(lp: LinearProgram): LpResult;
}

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

function termsText(terms: readonly LpTerm[]): string {
  if (terms.length === 0) return '0 dummy_zero';
  return terms
    .map((t, i) => {
      if (!NAME.test(t.variable)) throw new Error(`LP variable name '${t.variable}' is not allowed`);
      if (!Number.isFinite(t.coef)) throw new Error(`LP coefficient of ${t.variable} is ${t.coef}`);
      const sign = t.coef < 0 ? '-' : '+';
      const mag = Math.abs(t.coef).toPrecision(17).replace(/\.?0+$/, '').replace(/\.?0+e/, 'e');
      return `${i === 0 && sign === '+' ? '' : `${sign} `}${mag} ${t.variable}`;
    })
    .join(' ');
}

/** The programme in CPLEX LP text format (what HiGHS and most solvers read). */
export function toCplexLp(lp: LinearProgram): string {
  const lines: string[] = [lp.sense === 'maximize' ? 'Maximize' : 'Minimize', ` obj: ${termsText(lp.objective)}`, 'Subject To'];
  for (const c of lp.constraints) {
    if (!NAME.test(c.name)) throw new Error(`LP constraint name '${c.name}' is not allowed`);
    lines.push(` ${c.name}: ${termsText(c.terms)} ${c.op} ${c.rhs}`);
  }
  lines.push('Bounds');
  for (const v of lp.free ?? []) lines.push(` ${v} free`);
  if (lp.objective.length === 0) lines.push(' dummy_zero = 0');
  lines.push('End');
  return lines.join('\n') + '\n';
}
