/**
 * Queues: quota, use, borrowing and lending (per GPU model where the server gives them), the
 * cohort, the pending jobs with their reasons; for the admin, each tenant's GPUs in use against
 * an equal share of the cluster.
 */
import { useEffect, useState } from 'react';
import { api, qs } from '../api.ts';
import { gpuText } from '../format.ts';
import { on } from '../live.ts';
import type { Job, NodeInfo, Placement, QueueInfo, Session } from '../types.ts';

const show = (v: unknown): string => {
  if (v === null) return 'unlimited';
  if (v === undefined) return '—';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'object') return Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k}: ${show(x)}`).join(', ') || '—';
  return String(v);
};

export function QueuesView({ session }: { session: Session }) {
  const [queues, setQueues] = useState<QueueInfo[] | null>(null);
  const [pending, setPending] = useState<Record<string, Job[]>>({});
  const [usage, setUsage] = useState<{ tenants: string[]; byTenant: Map<string, number>; gpus: number; byQueueModel: Map<string, Record<string, number>> } | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async (): Promise<void> => {
      try {
        const r = await api<{ queues: QueueInfo[] }>('/v1/queues');
        setQueues(r.queues);
        const lists = await Promise.all(r.queues.map((q) => (q.pending > 0 ? api<{ jobs: Job[] }>(`/v1/jobs${qs({ state: 'pending', queue: q.name, limit: 10 })}`).then((x) => [q.name, x.jobs] as const) : Promise.resolve([q.name, []] as const))));
        setPending(Object.fromEntries(lists));
        if (session.role === 'admin') {
          const [t, p, n] = await Promise.all([api<{ tenants: string[] }>('/v1/tenants'), api<{ placements: Placement[] }>('/v1/placements'), api<{ nodes: NodeInfo[] }>('/v1/nodes')]);
          const byTenant = new Map<string, number>();
          // GPUs in use per queue and GPU model, from what holds each GPU (the admin sees every holder).
          const models = new Map(n.nodes.map((x) => [x.id, new Map(x.gpus.map((g) => [g.index, g.model]))]));
          const byQueueModel = new Map<string, Record<string, number>>();
          for (const x of p.placements) {
            if (x.tenant) byTenant.set(x.tenant, (byTenant.get(x.tenant) ?? 0) + x.gpuMilli * x.gpus.length);
            if (!x.queue) continue;
            const m = byQueueModel.get(x.queue) ?? {};
            for (const g of x.gpus) {
              const model = models.get(x.node)?.get(g) ?? '?';
              m[model] = (m[model] ?? 0) + x.gpuMilli / 1000;
            }
            byQueueModel.set(x.queue, m);
          }
          setUsage({ tenants: t.tenants, byTenant, byQueueModel, gpus: n.nodes.filter((x) => x.state !== 'lost').reduce((a, x) => a + x.gpus.length, 0) });
        }
        setError(null);
      } catch (e) {
        setError((e as Error).message);
      }
    };
    void load();
    const soon = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => void load(), 500);
    };
    const offs = [on('job', soon), on('reconnected', soon)];
    return () => {
      clearTimeout(timer);
      offs.forEach((f) => f());
    };
  }, [session.role]);

  return (
    <section aria-labelledby="queues-title">
      <h1 id="queues-title">Queues</h1>
      {error && <p className="error" role="alert">{error}</p>}
      {queues === null ? <p>Loading…</p> : (
        <div className="table-wrap">
          <table data-testid="queues-table">
            <thead><tr><th scope="col">Queue</th><th scope="col">Cohort</th><th scope="col">Nominal quota</th><th scope="col">Borrowing limit</th><th scope="col">Lending limit</th><th scope="col">GPUs used</th><th scope="col">Borrowed</th><th scope="col">Lent</th><th scope="col">Running</th><th scope="col">Pending</th><th scope="col">Open to</th></tr></thead>
            <tbody>
              {queues.map((q) => (
                <tr key={q.name}>
                  <th scope="row"><a href={`#/jobs?queue=${encodeURIComponent(q.name)}`}>{q.name}</a></th>
                  <td>{q.cohort ?? '—'}</td>
                  <td>{show(q.nominalQuota !== undefined ? q.nominalQuota : q.gpuQuota)}</td>
                  <td>{show(q.borrowingLimit)}</td>
                  <td>{show(q.lendingLimit)}</td>
                  <td>{gpuText(q.usedGpuMilli)}{q.usedByModel ? ` (${show(q.usedByModel)})` : usage?.byQueueModel.get(q.name) ? ` (${show(usage.byQueueModel.get(q.name))})` : ''}</td>
                  <td>{show(q.borrowed)}</td>
                  <td>{show(q.lent)}</td>
                  <td>{q.running}</td>
                  <td>{q.pending}</td>
                  <td>{q.tenants === null ? 'all tenants' : q.tenants.join(', ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Pending jobs and why</h2>
      {queues && queues.every((q) => q.pending === 0) ? <p>Nothing is waiting.</p> : (
        queues?.filter((q) => q.pending > 0).map((q) => (
          <div key={q.name}>
            <h3>{q.name} <span className="muted">({q.pending} pending)</span></h3>
            <ul>
              {(pending[q.name] ?? []).map((j) => <li key={j.id}><a href={`#/jobs/${j.id}`}>job {j.id} {j.name}</a>: {j.reason ?? 'waiting'}{j.estimatedStart ? `, expected to start ${new Date(j.estimatedStart).toLocaleTimeString()}` : ''}</li>)}
            </ul>
          </div>
        ))
      )}
      {usage && (
        <>
          <h2>Tenants: use and fair share</h2>
          <div className="table-wrap">
            <table>
              <thead><tr><th scope="col">Tenant</th><th scope="col">GPUs in use</th><th scope="col">Equal share</th><th scope="col">Of share</th></tr></thead>
              <tbody>
                {usage.tenants.map((t) => {
                  const used = (usage.byTenant.get(t) ?? 0) / 1000;
                  const share = usage.gpus / Math.max(1, usage.tenants.length);
                  return <tr key={t}><th scope="row">{t}</th><td>{used.toFixed(1)}</td><td>{share.toFixed(1)}</td><td><meter min={0} max={Math.max(1, share)} value={Math.min(used, share)} aria-label={`${t}: ${Math.round((100 * used) / Math.max(1, share))}% of its share`} /> {Math.round((100 * used) / Math.max(1, share))}%</td></tr>;
                })}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
