/**
 * What-if (admin): the cluster's own past jobs (a window of hours) or an uploaded workload file
 * replayed through two job schedulers with `tide sim`, side by side: JCT and waits as bars, the
 * summary table, and the GPUs-allocated chart the CLI writes with --svg.
 */
import { useEffect, useState, type FormEvent } from 'react';
import { api } from '../api.ts';
import type { Session } from '../types.ts';

interface PolicySummary {
  jobs: number;
  avgJctHours: number;
  p99JctHours: number;
  avgWaitHours: number;
  p99WaitHours: number;
  makespanHours: number;
  goodput: number;
  jainIndex: number;
  unfinished?: unknown[];
}
interface Result {
  report: { gpus: number; jobs: number; policies: Record<string, PolicySummary> };
  svg: string;
}

const METRICS: [keyof PolicySummary, string][] = [
  ['avgJctHours', 'average JCT (h)'],
  ['p99JctHours', 'p99 JCT (h)'],
  ['avgWaitHours', 'average wait (h)'],
  ['p99WaitHours', 'p99 wait (h)'],
  ['makespanHours', 'makespan (h)'],
];
const COLORS = ['#1f77b4', '#ff7f0e'];
/** A figure as the summary gives it (NaN arrives as null: shown as —). */
const fmt = (v: unknown): string => (typeof v !== 'number' || !Number.isFinite(v) ? '—' : Math.abs(v) >= 10 ? v.toFixed(1) : v.toPrecision(3));

export function WhatIfView({ session }: { session: Session }) {
  const [policies, setPolicies] = useState<string[]>([]);
  const [a, setA] = useState('fifo');
  const [b, setB] = useState('tide');
  const [hours, setHours] = useState(24);
  const [file, setFile] = useState<{ name: string; text: string } | null>(null);
  const [clusterFile, setClusterFile] = useState<string | null>(null);
  const [result, setResult] = useState<Result | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [running, setRunning] = useState(false);

  useEffect(() => {
    if (session.role !== 'admin') return;
    void api<{ policies: string[] }>('/v1/whatif').then((r) => {
      setPolicies(r.policies);
      if (!r.policies.includes('fifo')) setA(r.policies[0] ?? '');
      if (!r.policies.includes('tide')) setB(r.policies[1] ?? '');
    }, (e: Error) => setError(e.message));
  }, [session.role]);

  if (session.role !== 'admin') {
    return (
      <section aria-labelledby="whatif-title">
        <h1 id="whatif-title">What-if</h1>
        <p>Comparing scheduling policies on the cluster's history is for the admin. From the command line, <code>tide sim</code> runs the same comparison on your own workload files.</p>
      </section>
    );
  }

  const run = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setRunning(true);
    setError(null);
    try {
      const now = Date.now();
      const body = {
        ...(file
          ? { policies: [a, b], workload: file.text, workloadFormat: file.name.toLowerCase().endsWith('.csv') ? 'csv' : 'yaml' }
          : { policies: [a, b], from: Math.max(0, Math.round(now - hours * 3_600_000)), to: now }),
        ...(clusterFile !== null ? { cluster: clusterFile } : {}),
      };
      setResult(await api<Result>('/v1/whatif', { method: 'POST', body }));
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setRunning(false);
    }
  };

  const names = result ? Object.keys(result.report.policies) : [];
  return (
    <section aria-labelledby="whatif-title">
      <h1 id="whatif-title">What-if</h1>
      <p className="muted">Replay what ran on this cluster (or a workload file) under two schedulers, on the cluster as it is now, with the simulator behind <code>tide sim</code>.</p>
      <form className="whatif-form" onSubmit={(e) => void run(e)}>
        <label>Policy A
          <select value={a} onChange={(e) => setA(e.target.value)}>{policies.map((p) => <option key={p} value={p}>{p}</option>)}</select>
        </label>
        <label>Policy B
          <select value={b} onChange={(e) => setB(e.target.value)}>{policies.map((p) => <option key={p} value={p}>{p}</option>)}</select>
        </label>
        <label>Past hours
          <input type="number" min={1} max={24 * 30} value={hours} disabled={file !== null} onChange={(e) => setHours(Number(e.target.value))} />
        </label>
        <label>or a workload file (YAML, JSON or CSV)
          <input type="file" accept=".yaml,.yml,.json,.csv" onChange={(e) => {
            const f = e.target.files?.[0];
            if (!f) return setFile(null);
            void f.text().then((text) => setFile({ name: f.name, text }));
          }} />
        </label>
        <label>cluster file (optional; default: the cluster now)
          <input type="file" accept=".yaml,.yml,.json" onChange={(e) => {
            const f = e.target.files?.[0];
            if (!f) return setClusterFile(null);
            void f.text().then(setClusterFile);
          }} />
        </label>
        <button type="submit" disabled={running || !a || !b}>{running ? 'Simulating…' : 'Compare'}</button>
      </form>
      {error && <p className="error" role="alert">{error}</p>}
      {result && (
        <div data-testid="whatif-result">
          <p>{result.report.jobs} jobs on {result.report.gpus} GPUs.</p>
          <div className="bars" role="img" aria-label={METRICS.map(([k, label]) => `${label}: ${names.map((n) => `${n} ${fmt(result.report.policies[n]?.[k])}`).join(', ')}`).join('; ')}>
            {METRICS.map(([k, label]) => {
              const max = Math.max(1e-9, ...names.map((n) => Number(result.report.policies[n]?.[k] ?? 0)));
              return (
                <div key={k} className="bar-group">
                  <div className="bar-label">{label}</div>
                  {names.map((n, i) => {
                    const v = Number(result.report.policies[n]?.[k] ?? 0);
                    return <div key={n} className="bar-row"><span className="bar-name">{n}</span><span className="bar" style={{ width: `${(70 * v) / max}%`, background: COLORS[i % 2] }} /><span>{fmt(v)}</span></div>;
                  })}
                </div>
              );
            })}
          </div>
          <div className="table-wrap">
            <table>
              <thead><tr><th scope="col">Policy</th><th scope="col">Finished</th>{METRICS.map(([, l]) => <th key={l} scope="col">{l}</th>)}<th scope="col">Goodput</th><th scope="col">Jain</th></tr></thead>
              <tbody>
                {names.map((n) => {
                  const s = result.report.policies[n] as PolicySummary;
                  return <tr key={n}><th scope="row">{n}</th><td>{s.jobs}/{result.report.jobs}</td>{METRICS.map(([k]) => <td key={k}>{fmt(s[k])}</td>)}<td>{fmt(s.goodput)}</td><td>{fmt(s.jainIndex)}</td></tr>;
                })}
              </tbody>
            </table>
          </div>
          <figure className="svg-chart">
            <img src={`data:image/svg+xml;charset=utf-8,${encodeURIComponent(result.svg)}`} alt={`GPUs allocated over simulated time under ${names.join(' and ')}`} />
          </figure>
        </div>
      )}
    </section>
  );
}
