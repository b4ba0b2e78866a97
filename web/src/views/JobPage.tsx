/**
 * One job: its state, why it waits and when it should start, where its tasks run (with the live
 * telemetry of their GPUs), the timeline of its events, its logs (followed while it runs), and
 * cancel (its owner or the admin) and preempt (the admin).
 */
import { useEffect, useRef, useState } from 'react';
import { describeElements } from '../../../src/api/arrayWords.ts';
import { api, ApiFailure, currentToken } from '../api.ts';
import { ago, duration, time } from '../format.ts';
import { latestNodes, on } from '../live.ts';
import { FINISHED, type Job, type JobEvent, type NodeInfo, type Session, type Task } from '../types.ts';
import { StateBadge } from './Jobs.tsx';

interface Detail {
  job: Job;
  tasks: Task[];
  events: JobEvent[];
}

export function JobPage({ id, session }: { id: string; session: Session }) {
  const [d, setD] = useState<Detail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [nodes, setNodes] = useState<NodeInfo[]>(latestNodes());

  useEffect(() => {
    const load = (): void => {
      api<Detail>(`/v1/jobs/${encodeURIComponent(id)}`).then(setD, (e: Error) => setError(e instanceof ApiFailure && e.status === 404 ? `No job ${id} (or not yours).` : e.message));
    };
    load();
    const offs = [
      on('job', ({ job }) => {
        if (job.id !== id) return;
        setD((cur) => (cur ? { ...cur, job } : cur));
        // Placement changes with the state: read the tasks again.
        void api<Detail>(`/v1/jobs/${encodeURIComponent(id)}`).then(setD, () => {});
      }),
      on('event', ({ event }) => {
        if (event.jobId === id) setD((cur) => (cur && !cur.events.some((e) => e.id === event.id) ? { ...cur, events: [...cur.events, event] } : cur));
      }),
      on('nodes', ({ nodes }) => setNodes(nodes)),
      on('reconnected', load),
    ];
    return () => offs.forEach((f) => f());
  }, [id]);

  const act = async (verb: 'cancel' | 'preempt'): Promise<void> => {
    setNotice(null);
    try {
      const r = await api<{ job: Job }>(`/v1/jobs/${encodeURIComponent(id)}/${verb}`, { method: 'POST' });
      setD((cur) => (cur ? { ...cur, job: r.job } : cur));
      setNotice(verb === 'cancel' ? 'Cancelling: its tasks are being stopped.' : 'Preempted: it will be requeued.');
    } catch (e) {
      setNotice((e as Error).message);
    }
  };

  if (error) return <section><h1>Job {id}</h1><p className="error" role="alert">{error}</p></section>;
  if (!d) return <section><h1>Job {id}</h1><p>Loading…</p></section>;
  const { job, tasks, events } = d;
  const finished = FINISHED.has(job.state);
  // This attempt's time: until now, or until it ended (runSeconds holds the earlier attempts').
  const running = job.startedAt !== null ? ((finished ? (job.finishedAt ?? job.startedAt) : Date.now()) - job.startedAt) / 1000 : 0;
  const activeTasks = tasks.filter((t) => t.attempt === job.attempt);
  const progress = job.progress ?? null;
  return (
    <section aria-labelledby="job-title">
      <h1 id="job-title">Job {job.id}: {job.name}</h1>
      <div className="job-head">
        <p>State: <StateBadge state={job.state} /> <span data-testid="job-state" className="sr-state">{job.state}</span></p>
        <div className="actions">
          {!finished && <button type="button" onClick={() => void act('cancel')}>Cancel job</button>}
          {session.role === 'admin' && (job.state === 'running' || job.state === 'admitted') && <button type="button" onClick={() => void act('preempt')}>Preempt</button>}
        </div>
      </div>
      {notice && <p role="status" className="notice">{notice}</p>}
      <dl className="facts">
        <dt>Tenant</dt><dd>{job.tenant}</dd>
        <dt>Queue</dt><dd>{job.queue}</dd>
        {job.arrayId && <><dt>Array</dt><dd><a href={`#/jobs?array=${job.arrayId}`}>array {job.arrayId}</a>, {describeElements(job)}</dd></>}
        <dt>Kind</dt><dd>{job.kind}</dd>
        <dt>Priority</dt><dd>{job.priority}</dd>
        <dt>GPUs</dt><dd>{job.gpus} over {job.tasks} task{job.tasks === 1 ? '' : 's'}</dd>
        <dt>Attempt</dt><dd>{job.attempt}{Array.isArray(job.attempts) ? ` (${job.attempts.length} recorded)` : ''}</dd>
        <dt>Submitted</dt><dd>{time(job.createdAt)}</dd>
        <dt>Started</dt><dd>{time(job.startedAt)}</dd>
        <dt>Finished</dt><dd>{time(job.finishedAt)}</dd>
        <dt>Run time</dt><dd>{duration((job.runSeconds ?? 0) + running)}</dd>
        {progress && <><dt>Progress</dt><dd>step {progress.step}{progress.totalSteps ? ` of ${progress.totalSteps}` : ''}{progress.checkpointStep !== null ? `, checkpoint at ${progress.checkpointStep}` : ''}</dd></>}
        {job.reason && <><dt>{job.state === 'pending' ? 'Why pending' : 'Reason'}</dt><dd data-testid="job-reason">{job.reason}</dd></>}
        {job.state === 'pending' && <><dt>Estimated start</dt><dd>{job.estimatedStart ? `${time(job.estimatedStart)} (${ago(job.estimatedStart)})` : 'not known yet'}</dd></>}
      </dl>

      <h2>Placement and resource use</h2>
      {activeTasks.length === 0 ? <p>No tasks placed{job.state === 'pending' ? ' yet' : ''}.</p> : (
        <div className="table-wrap">
          <table>
            <thead><tr><th scope="col">Task</th><th scope="col">State</th><th scope="col">Node</th><th scope="col">GPUs</th><th scope="col">Util %</th><th scope="col">Memory MiB</th><th scope="col">Power W</th><th scope="col">Exit</th></tr></thead>
            <tbody>
              {activeTasks.map((t) => {
                const node = nodes.find((n) => n.id === t.node);
                const tele = t.gpus.map((g) => node?.telemetry.find((x) => x.index === g));
                const sum = (f: (x: NonNullable<(typeof tele)[number]>) => number): string => (tele.some(Boolean) ? String(Math.round(tele.reduce((a, x) => a + (x ? f(x) : 0), 0))) : '—');
                return (
                  <tr key={`${t.index}-${t.attempt}`}>
                    <td>{t.group}[{t.index}]</td>
                    <td>{t.state}</td>
                    <td>{t.node ?? '—'}</td>
                    <td>{t.gpus.join(', ') || '—'}{t.gpuMilli < 1000 && t.gpus.length ? ` (${t.gpuMilli / 10}%)` : ''}</td>
                    <td>{tele.some(Boolean) ? String(Math.round(tele.reduce((a, x) => a + (x?.utilization ?? 0), 0) / Math.max(1, tele.length))) : '—'}</td>
                    <td>{sum((x) => x.memoryUsedMib)}</td>
                    <td>{sum((x) => x.powerWatts)}</td>
                    <td>{t.exitCode ?? ''}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}

      <h2>Timeline</h2>
      <ol className="timeline" data-testid="timeline">
        {events.map((e) => (
          <li key={e.id}><time dateTime={new Date(e.at).toISOString()}>{new Date(e.at).toLocaleTimeString()}</time> <code>{e.type}</code> {e.message}</li>
        ))}
      </ol>

      <Logs id={id} tasks={job.tasks} follow={!finished} />
    </section>
  );
}

/** The task's log, read from where the last read ended; followed every 2 s while the job runs. */
function Logs({ id, tasks, follow }: { id: string; tasks: number; follow: boolean }) {
  const [task, setTask] = useState(0);
  const [stream, setStream] = useState<'stdout' | 'stderr'>('stdout');
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const offset = useRef(0);
  useEffect(() => {
    offset.current = 0;
    setText('');
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const read = async (): Promise<void> => {
      try {
        const res = await fetch(`/v1/jobs/${encodeURIComponent(id)}/logs?task=${task}&stream=${stream}&offset=${offset.current}`, { headers: { authorization: `Bearer ${currentToken() ?? ''}` } });
        if (res.ok) {
          const chunk = await res.text();
          offset.current = Number(res.headers.get('x-tide-next-offset') ?? offset.current);
          if (chunk && !stopped) setText((t) => (t + chunk).slice(-200_000));
          setError(null);
        } else if (res.status !== 503) setError(`logs: ${res.status}`);
      } catch {
        // the next read tries again
      }
      if (!stopped && follow) timer = setTimeout(() => void read(), 2000);
    };
    void read();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [id, task, stream, follow]);
  return (
    <>
      <h2>Logs</h2>
      <div className="filters">
        <label>Task
          <select value={task} onChange={(e) => setTask(Number(e.target.value))}>
            {Array.from({ length: tasks }, (_, i) => <option key={i} value={i}>{i}</option>)}
          </select>
        </label>
        <label>Stream
          <select value={stream} onChange={(e) => setStream(e.target.value as 'stdout' | 'stderr')}>
            <option value="stdout">stdout</option>
            <option value="stderr">stderr</option>
          </select>
        </label>
      </div>
      {error && <p className="error">{error}</p>}
      <pre className="logs" data-testid="logs" tabIndex={0} aria-label="Task log">{text || '(no output yet)'}</pre>
    </>
  );
}
