/** What-if: the cluster's own past jobs replayed through two policies side by side (to come). */
import type { Session } from '../types.ts';

export function WhatIfView(_props: { session: Session }) {
  return (
    <section aria-labelledby="whatif-title">
      <h1 id="whatif-title">What-if</h1>
      <p>Compare two scheduling policies on this cluster's past jobs. Use <code>tide sim</code> from the command line for now.</p>
    </section>
  );
}
