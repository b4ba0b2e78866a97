/**
 * The LpSolver port backed by HiGHS (compiled to WebAssembly, npm `highs`). Loading the
 * WebAssembly module is asynchronous and reads a file, so it happens here, outside core.
 */
import * as highsModule from 'highs';
import type { Highs } from 'highs';
import { toCplexLp, type LinearProgram, type LpResult, type LpSolver } from '../core/lp.ts';

type Loader = () => Promise<Highs>;
// The package's types describe a CommonJS module; under ESM its loader is the default export.
const loadHighs: Loader = (highsModule as unknown as { default: Loader }).default;

let loaded: Promise<LpSolver> | undefined;

/** One HiGHS instance per thread, loaded on first use. */
export function highsSolver(): Promise<LpSolver> {
  loaded ??= loadHighs().then((highs): LpSolver => ({
    solve(lp: LinearProgram): LpResult {
      const result = highs.solve(toCplexLp(lp), { output_flag: false, presolve: 'on' });
      if (result.Status === 'Optimal') {
        const values = new Map<string, number>();
        for (const [name, col] of Object.entries(result.Columns)) values.set(name, (col as { Primal: number }).Primal);
        return { status: 'optimal', objective: result.ObjectiveValue, values };
      }
      if (result.Status === 'Infeasible') return { status: 'infeasible', message: result.Status };
      if (result.Status === 'Unbounded') return { status: 'unbounded', message: result.Status };
      return { status: 'error', message: result.Status };
    },
  }));
  return loaded as Promise<LpSolver>;
}
