/**
 * The cluster: every GPU a cell, grouped by node and model and coloured by state (free, a
 * fraction in use, whole, held but idle, draining, lost), the counters, and utilisation and
 * power over the last hours. Hovering or focusing a cell shows its telemetry and the jobs on it.
 */
import { memo, useEffect, useLayoutEffect, useMemo, useState, type KeyboardEvent } from 'react';
import { api, qs } from '../api.ts';
import { latestNodes, on, timing } from '../live.ts';
import type { NodeInfo, Placement, Session, TelemetryPoint } from '../types.ts';
import { TimeChart } from './Chart.tsx';

/** Held GPUs under this utilisation (percent) count as idle (the server's IDLE_UTILIZATION). */
const IDLE = 5;

export type GpuState = 'free' | 'fraction' | 'whole' | 'idle' | 'draining' | 'lost' | 'asleep';
export const STATE_LABEL: Record<GpuState, string> = { free: 'free', fraction: 'fractional share in use', whole: 'in use (whole)', idle: 'held but idle', draining: 'draining', lost: 'lost', asleep: 'node powered down or waking (power saving)' };

export interface GpuCell {
  readonly key: string;
  readonly node: string;
  readonly index: number;
  readonly model: string;
  readonly state: GpuState;
  readonly usedMilli: number;
  readonly utilization: number | null;
  readonly memoryUsedMib: number | null;
  readonly memoryMib: number;
  readonly powerWatts: number | null;
}

export function gpuCells(nodes: readonly NodeInfo[]): GpuCell[] {
  const cells: GpuCell[] = [];
  for (const n of nodes) {
    const tele = new Map(n.telemetry.map((t) => [t.index, t]));
    n.gpus.forEach((g, i) => {
      const used = n.gpuUsedMilli[i] ?? 0;
      const t = tele.get(g.index);
      const state: GpuState = n.state === 'lost' ? 'lost' : n.state === 'drained' ? 'draining' : n.state === 'suspended' || n.state === 'resuming' ? 'asleep' : used === 0 ? 'free' : t && t.utilization < IDLE ? 'idle' : used < 1000 ? 'fraction' : 'whole';
      cells.push({ key: `${n.id}/${g.index}`, node: n.id, index: g.index, model: g.model, state, usedMilli: used, utilization: t?.utilization ?? null, memoryUsedMib: t?.memoryUsedMib ?? null, memoryMib: g.memoryMib, powerWatts: t?.powerWatts ?? null });
    });
  }
  return cells;
}

export function ClusterView({ session }: { session: Session }) {
  const [nodes, setNodes] = useState<NodeInfo[]>(latestNodes());
  const [placements, setPlacements] = useState<Placement[]>([]);
  const [points, setPoints] = useState<TelemetryPoint[]>([]);
  const [focus, setFocus] = useState<string | null>(null);

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const loadPlacements = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => void api<{ placements: Placement[] }>('/v1/placements').then((r) => setPlacements(r.placements), () => {}), 150);
    };
    // The same nodes again (the stream's first message repeats what was read) change nothing.
    let shown = '';
    const show = (next: NodeInfo[]): void => {
      const text = JSON.stringify(next);
      if (text === shown) return;
      shown = text;
      setNodes(next);
    };
    if (latestNodes().length === 0) void api<{ nodes: NodeInfo[] }>('/v1/nodes').then((r) => show(r.nodes), () => {});
    else show(latestNodes());
    loadPlacements();
    const offs = [on('nodes', ({ nodes }) => { show(nodes); loadPlacements(); }), on('job', loadPlacements), on('reconnected', loadPlacements)];
    return () => {
      clearTimeout(timer);
      offs.forEach((f) => f());
    };
  }, []);

  useEffect(() => {
    let last = 0;
    let stopped = false;
    const load = (): void => {
      void api<{ points: TelemetryPoint[] }>(`/v1/telemetry${qs({ since: last || undefined })}`).then((r) => {
        if (stopped || r.points.length === 0) return;
        last = r.points.at(-1)?.at ?? last;
        setPoints((p) => [...p, ...r.points].slice(-2160));
      }, () => {});
    };
    load();
    // The server samples every 10 s: read the new samples as often.
    const t = setInterval(load, 10_000);
    return () => {
      stopped = true;
      clearInterval(t);
    };
  }, []);

  const cells = useMemo(() => gpuCells(nodes), [nodes]);
  // For bench/web.ts: from the stream message to the grid drawn with it.
  useLayoutEffect(() => {
    if (window.__tide && timing.receivedAt) window.__tide.lastGridUpdateMs = performance.now() - timing.receivedAt;
  }, [cells]);
  const byGpu = useMemo(() => {
    const m = new Map<string, Placement[]>();
    for (const p of placements) for (const g of p.gpus) {
      const k = `${p.node}/${g}`;
      m.set(k, [...(m.get(k) ?? []), p]);
    }
    return m;
  }, [placements]);
  const counts = useMemo(() => {
    const c = { total: cells.length, allocated: 0, idle: 0, free: 0, down: 0 };
    for (const x of cells) {
      if (x.state === 'free') c.free++;
      else if (x.state === 'lost') c.down++;
      else if (x.usedMilli > 0) {
        c.allocated++;
        if (x.state === 'idle') c.idle++;
      }
    }
    return c;
  }, [cells]);
  const focused = focus ? cells.find((c) => c.key === focus) : undefined;
  const x = useMemo(() => points.map((p) => p.at), [points]);
  const util = useMemo(() => [{ label: 'utilisation', color: '#1d5fbf', values: points.map((p) => p.utilization) }], [points]);
  const alloc = useMemo(() => [
    { label: 'allocated', color: '#1d5fbf', values: points.map((p) => p.allocated) },
    { label: 'allocated idle', color: '#b35900', values: points.map((p) => p.allocatedIdle) },
  ], [points]);
  const power = useMemo(() => [{ label: 'power', color: '#8a2be2', values: points.map((p) => p.powerWatts) }], [points]);

  return (
    <section aria-labelledby="cluster-title">
      <h1 id="cluster-title">Cluster</h1>
      <ul className="counters" aria-label="GPU counts">
        <li><strong data-testid="count-allocated">{counts.allocated}</strong> allocated</li>
        <li><strong data-testid="count-idle">{counts.idle}</strong> allocated but idle</li>
        <li><strong data-testid="count-free">{counts.free}</strong> free</li>
        <li><strong>{counts.total}</strong> GPUs on {nodes.length} node{nodes.length === 1 ? '' : 's'}{counts.down ? `, ${counts.down} lost` : ''}</li>
      </ul>
      <ul className="legend" aria-label="Legend">
        {(Object.keys(STATE_LABEL) as GpuState[]).map((s) => <li key={s}><span className={`cell g-${s}`} aria-hidden="true" /> {STATE_LABEL[s]}</li>)}
      </ul>
      <div className="cluster-layout">
        <Grid nodes={nodes} cells={cells} onFocus={setFocus} />
        <aside className="gpu-detail" aria-live="polite" data-testid="gpu-detail">
          {focused ? <GpuDetail cell={focused} holders={byGpu.get(focused.key) ?? []} session={session} /> : <p className="muted">Hover or focus a GPU to see its jobs and telemetry.</p>}
        </aside>
      </div>
      <div className="charts">
        <TimeChart title="GPUs allocated and idle" unit="GPUs" x={x} series={alloc} />
        <TimeChart title="Mean GPU utilisation" unit="%" x={x} series={util} />
        <TimeChart title="GPU power" unit="W" x={x} series={power} />
      </div>
      <p className="muted">Energy and cost per job appear here when the agents report them.</p>
    </section>
  );
}

/** The cells, re-rendered only when the nodes change (not when the focus moves). */
const Grid = memo(function Grid({ nodes, cells, onFocus }: { nodes: readonly NodeInfo[]; cells: readonly GpuCell[]; onFocus: (k: string | null) => void }) {
  const groups = useMemo(() => {
    const m = new Map<string, GpuCell[]>();
    for (const c of cells) {
      const k = `${c.node}\u0000${c.model}`;
      m.set(k, [...(m.get(k) ?? []), c]);
    }
    return [...m.entries()];
  }, [cells]);
  // When the cells were first put in the page (ms since navigation), for bench/web.ts.
  useLayoutEffect(() => {
    if (cells.length && window.__tide && window.__tide.gridRenderedAt === undefined) window.__tide.gridRenderedAt = performance.now();
  }, [cells]);
  if (nodes.length === 0) return <p>No nodes have registered yet: start an agent (<code>tide agent</code>) or <code>tide up</code>.</p>;
  // One handler for all the cells (by their data-gpu), not two per cell.
  const pick = (e: { target: EventTarget }): void => {
    const key = (e.target as HTMLElement).dataset?.['gpu'];
    if (key) onFocus(key);
  };
  // One tab stop for the whole grid (the first cell, then the last one focused); the arrow keys,
  // Home and End move between cells, so a keyboard does not tab through a thousand GPUs.
  const move = (e: KeyboardEvent<HTMLDivElement>): void => {
    const all = [...e.currentTarget.querySelectorAll<HTMLButtonElement>('button[data-gpu]')];
    const at = all.indexOf(e.target as HTMLButtonElement);
    if (at < 0) return;
    const step: Record<string, number> = { ArrowRight: 1, ArrowDown: 8, ArrowLeft: -1, ArrowUp: -8, Home: -at, End: all.length - 1 - at };
    const d = step[e.key];
    if (d === undefined) return;
    e.preventDefault();
    const next = all[Math.max(0, Math.min(all.length - 1, at + d))];
    if (!next) return;
    for (const b of all) if (b.tabIndex === 0) b.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  };
  return (
    <div className="grid" data-testid="gpu-grid" onMouseOver={pick} onFocus={pick} onKeyDown={move} role="group" aria-label="GPUs: arrow keys move between them">
      {groups.map(([k, cs]) => {
        const [node, model] = k.split('\u0000');
        return (
          <div key={k} className="node-group">
            <h2 className="node-name">{node} <span className="muted">{model}</span></h2>
            <ul className="cells">
              {cs.map((c) => (
                <li key={c.key}>
                  <button type="button" tabIndex={c === cells[0] ? 0 : -1} className={`cell g-${c.state}`} data-state={c.state} data-gpu={c.key} aria-label={`${c.node} GPU ${c.index} ${c.model}: ${STATE_LABEL[c.state]}${c.utilization !== null ? `, ${c.utilization}% busy` : ''}`} />
                </li>
              ))}
            </ul>
          </div>
        );
      })}
    </div>
  );
});

function GpuDetail({ cell, holders, session }: { cell: GpuCell; holders: readonly Placement[]; session: Session }) {
  return (
    <>
      <h2>{cell.node} GPU {cell.index}</h2>
      <p>{cell.model}, {STATE_LABEL[cell.state]}{cell.usedMilli > 0 ? ` (${cell.usedMilli / 10}% allocated)` : ''}</p>
      <dl className="facts">
        <dt>Utilisation</dt><dd>{cell.utilization ?? '—'}%</dd>
        <dt>Memory</dt><dd>{cell.memoryUsedMib ?? '—'} / {cell.memoryMib} MiB</dd>
        <dt>Power</dt><dd>{cell.powerWatts ?? '—'} W</dd>
      </dl>
      {holders.length === 0 ? <p>No jobs on it.</p> : (
        <ul>
          {holders.map((h, i) => (
            <li key={i}>{h.mine && h.job ? <a href={`#/jobs/${h.job}`}>job {h.job} {h.name}{session.role === 'admin' ? ` (${h.tenant ?? ''})` : ''}</a> : 'another tenant\'s job'}{h.gpuMilli < 1000 ? `, ${h.gpuMilli / 10}%` : ''}</li>
          ))}
        </ul>
      )}
    </>
  );
}
