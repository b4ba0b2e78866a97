/**
 * Submit, low-code: a template (training on one GPU, a multi-node training gang, an inference
 * service, a batch array over a folder of shards) filled in as a form. The spec it makes is shown
 * as YAML beside the form (what `tide submit` takes) and checked by the server's dry run
 * (POST /v1/jobs/validate) as it changes, so the errors are the API's own, shown on their fields.
 */
import { useEffect, useMemo, useState, type FormEvent, type ReactNode } from 'react';
import { api, ApiFailure, type FieldError } from '../api.ts';
import { go } from '../route.ts';
import type { Job, JobArray, NodeInfo, QueueInfo, Session } from '../types.ts';
import { specYaml } from '../yaml.ts';

interface Form {
  template: TemplateId;
  name: string;
  queue: string;
  priority: number;
  gpus: string;
  gpuModel: string;
  replicas: number;
  cpu: string;
  memory: string;
  command: string;
  array: number;
  shardDir: string;
  preemptible: boolean;
  checkpoint: boolean;
  timeLimit: string;
}

type TemplateId = 'train-single' | 'train-gang' | 'inference' | 'batch-array';

const TEMPLATES: Record<TemplateId, { label: string; help: string; form: Omit<Form, 'template' | 'queue' | 'gpuModel'> }> = {
  'train-single': {
    label: 'Training, one GPU',
    help: 'One process on one GPU; checkpoints to $TIDE_CHECKPOINT_DIR so a preempted run resumes.',
    form: { name: 'train', priority: 0, gpus: '1', replicas: 1, cpu: '4', memory: '16Gi', command: 'python train.py --checkpoint-dir "$TIDE_CHECKPOINT_DIR"', array: 1, shardDir: '', preemptible: true, checkpoint: true, timeLimit: '' },
  },
  'train-gang': {
    label: 'Training, multi-node gang',
    help: 'Replicas start together or not at all; each gets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT.',
    form: { name: 'train-gang', priority: 10, gpus: '8', replicas: 2, cpu: '32', memory: '256Gi', command: 'torchrun --nnodes "$WORLD_SIZE" --node-rank "$RANK" --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" train.py', array: 1, shardDir: '', preemptible: true, checkpoint: true, timeLimit: '' },
  },
  inference: {
    label: 'Inference service',
    help: 'A long-running server, not preempted; a fraction of a GPU (e.g. 0.5) shares it through CUDA MPS.',
    form: { name: 'serve', priority: 100, gpus: '1', replicas: 1, cpu: '4', memory: '32Gi', command: 'python -m vllm.entrypoints.openai.api_server --model "$MODEL"', array: 1, shardDir: '', preemptible: false, checkpoint: false, timeLimit: '' },
  },
  'batch-array': {
    label: 'Batch array over shards',
    help: 'One element per shard: element i reads shard i of the folder ($TIDE_ARRAY_INDEX).',
    form: { name: 'batch', priority: 0, gpus: '1', replicas: 1, cpu: '2', memory: '8Gi', command: 'python process.py "$SHARD_DIR/shard-$TIDE_ARRAY_INDEX"', array: 4, shardDir: '/data/shards', preemptible: true, checkpoint: false, timeLimit: '' },
  },
};

const KIND: Record<TemplateId, string> = { 'train-single': 'training', 'train-gang': 'training', inference: 'inference', 'batch-array': 'batch' };

/** The job spec (the API's input format) the form stands for. */
export function specOf(f: Form): Record<string, unknown> {
  const gpus = Number(f.gpus);
  return {
    name: f.name,
    queue: f.queue,
    kind: KIND[f.template],
    priority: f.priority,
    preemptible: f.preemptible,
    checkpoint: f.checkpoint,
    ...(f.template === 'batch-array' ? { array: f.array } : {}),
    ...(f.timeLimit.trim() ? { timeLimit: /^\d+$/.test(f.timeLimit.trim()) ? Number(f.timeLimit.trim()) : f.timeLimit.trim() } : {}),
    tasks: [{
      name: f.template === 'inference' ? 'server' : f.template === 'train-gang' ? 'worker' : 'main',
      replicas: f.replicas,
      gpus: f.gpus.trim() === '' || Number.isNaN(gpus) ? f.gpus : gpus,
      ...(f.gpuModel ? { gpuModels: [f.gpuModel] } : {}),
      cpu: /^\d+(\.\d+)?$/.test(f.cpu) ? Number(f.cpu) : f.cpu,
      memory: f.memory,
      command: f.command,
      ...(f.template === 'batch-array' && f.shardDir ? { env: { SHARD_DIR: f.shardDir } } : {}),
    }],
  };
}

/** Which form field an API error path belongs to. */
function fieldOf(path: string): keyof Form | null {
  const p = path.replace(/^tasks\[0\]\.?/, 'task.');
  const map: Record<string, keyof Form> = { name: 'name', queue: 'queue', priority: 'priority', array: 'array', timeLimit: 'timeLimit', preemptible: 'preemptible', checkpoint: 'checkpoint', 'task.gpus': 'gpus', 'task.gpuModels': 'gpuModel', 'task.replicas': 'replicas', 'task.cpu': 'cpu', 'task.memory': 'memory', 'task.command': 'command', 'task.env': 'shardDir', 'task.env.SHARD_DIR': 'shardDir' };
  return map[p] ?? (p.startsWith('task.gpuModels') ? 'gpuModel' : null);
}

export function SubmitView({ session }: { session: Session }) {
  const [queues, setQueues] = useState<QueueInfo[]>([]);
  const [models, setModels] = useState<string[]>([]);
  const [form, setForm] = useState<Form>({ template: 'train-single', queue: 'default', gpuModel: '', ...TEMPLATES['train-single'].form });
  const [errors, setErrors] = useState<FieldError[]>([]);
  const [checked, setChecked] = useState<'idle' | 'checking' | 'ok' | 'bad'>('idle');
  const [submitting, setSubmitting] = useState(false);
  const [message, setMessage] = useState<string | null>(null);

  useEffect(() => {
    void api<{ queues: QueueInfo[] }>('/v1/queues').then((r) => {
      setQueues(r.queues);
      const own = r.queues.find((q) => q.tenants !== null && session.tenant !== null && q.tenants.includes(session.tenant));
      setForm((f) => (r.queues.some((q) => q.name === f.queue) ? f : { ...f, queue: own?.name ?? r.queues[0]?.name ?? 'default' }));
    }, () => {});
    void api<{ nodes: NodeInfo[] }>('/v1/nodes').then((r) => setModels([...new Set(r.nodes.flatMap((n) => n.gpus.map((g) => g.model)))].sort()), () => {});
  }, [session.tenant]);

  const spec = useMemo(() => specOf(form), [form]);
  const yaml = useMemo(() => specYaml(spec), [spec]);

  useEffect(() => {
    const ctl = new AbortController();
    setChecked('checking');
    const t = setTimeout(() => {
      api<{ ok: boolean; error?: { message: string; fields?: FieldError[] } }>('/v1/jobs/validate', { method: 'POST', body: spec, signal: ctl.signal }).then(
        (r) => {
          if (r.ok) {
            setErrors([]);
            setChecked('ok');
          } else {
            setErrors(r.error?.fields?.length ? [...r.error.fields] : [{ path: '(root)', message: r.error?.message ?? 'invalid' }]);
            setChecked('bad');
          }
        },
        (e: Error) => {
          if (ctl.signal.aborted) return;
          setErrors(e instanceof ApiFailure ? (e.fields.length ? [...e.fields] : [{ path: '(root)', message: e.message }]) : [{ path: '(root)', message: e.message }]);
          setChecked('bad');
        },
      );
    }, 250);
    return () => {
      clearTimeout(t);
      ctl.abort();
    };
  }, [spec]);

  const set = <K extends keyof Form>(k: K, v: Form[K]): void => setForm((f) => ({ ...f, [k]: v }));
  const pick = (t: TemplateId): void => setForm((f) => ({ ...f, template: t, ...TEMPLATES[t].form }));
  const errorFor = (k: keyof Form): string | undefined => errors.filter((e) => fieldOf(e.path) === k).map((e) => e.message).join('; ') || undefined;
  const general = errors.filter((e) => fieldOf(e.path) === null);

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setSubmitting(true);
    setMessage(null);
    try {
      const r = await api<{ jobs: Job[]; array?: JobArray }>('/v1/jobs', { method: 'POST', body: spec });
      // An array is answered as one: its elements are listed by the job list's array filter.
      if (r.array) go(`#/jobs?array=${r.array.id}`);
      else if (r.jobs[0]) go(`#/jobs/${r.jobs[0].id}`);
    } catch (err) {
      if (err instanceof ApiFailure && err.fields.length) setErrors([...err.fields]);
      setMessage((err as Error).message);
    } finally {
      setSubmitting(false);
    }
  };

  const field = (k: keyof Form, label: string, input: (p: { id: string; 'aria-invalid': boolean; 'aria-describedby'?: string }) => ReactNode, hint?: string) => {
    const err = errorFor(k);
    const id = `f-${k}`;
    const described = [err ? `${id}-err` : '', hint ? `${id}-hint` : ''].filter(Boolean).join(' ');
    return (
      <div className={err ? 'field invalid' : 'field'}>
        <label htmlFor={id}>{label}</label>
        {input({ id, 'aria-invalid': err !== undefined, ...(described ? { 'aria-describedby': described } : {}) })}
        {hint && <small id={`${id}-hint`} className="muted">{hint}</small>}
        {err && <small id={`${id}-err`} className="error" data-testid={`error-${k}`}>{err}</small>}
      </div>
    );
  };

  return (
    <section aria-labelledby="submit-title">
      <h1 id="submit-title">Submit a job</h1>
      <fieldset className="templates">
        <legend>Template</legend>
        {(Object.keys(TEMPLATES) as TemplateId[]).map((t) => (
          <label key={t} className={form.template === t ? 'template on' : 'template'}>
            <input type="radio" name="template" value={t} checked={form.template === t} onChange={() => pick(t)} />
            <span>{TEMPLATES[t].label}</span>
          </label>
        ))}
      </fieldset>
      <p className="muted">{TEMPLATES[form.template].help}</p>
      <div className="submit-layout">
        <form onSubmit={(e) => void submit(e)} aria-label="Job" noValidate>
          {field('name', 'Name', (p) => <input {...p} value={form.name} onChange={(e) => set('name', e.target.value)} />)}
          {field('queue', 'Queue', (p) => (
            <select {...p} value={form.queue} onChange={(e) => set('queue', e.target.value)}>
              {!queues.some((q) => q.name === form.queue) && <option value={form.queue}>{form.queue}</option>}
              {queues.map((q) => <option key={q.name} value={q.name}>{q.name}</option>)}
            </select>
          ))}
          {field('gpus', form.template === 'train-gang' ? 'GPUs per node' : 'GPUs', (p) => <input {...p} inputMode="decimal" value={form.gpus} onChange={(e) => set('gpus', e.target.value)} />, form.template === 'inference' ? 'a fraction such as 0.5 shares a GPU' : undefined)}
          {field('gpuModel', 'GPU model', (p) => (
            <select {...p} value={form.gpuModel} onChange={(e) => set('gpuModel', e.target.value)}>
              <option value="">any model</option>
              {models.map((m) => <option key={m} value={m}>{m}</option>)}
            </select>
          ))}
          {form.template !== 'train-single' && form.template !== 'batch-array' && field('replicas', form.template === 'train-gang' ? 'Nodes (replicas)' : 'Replicas', (p) => <input {...p} type="number" min={1} value={form.replicas} onChange={(e) => set('replicas', Number(e.target.value))} />)}
          {form.template === 'batch-array' && field('array', 'Shards (array elements)', (p) => <input {...p} type="number" min={1} value={form.array} onChange={(e) => set('array', Number(e.target.value))} />)}
          {form.template === 'batch-array' && field('shardDir', 'Shard folder', (p) => <input {...p} value={form.shardDir} onChange={(e) => set('shardDir', e.target.value)} />, 'passed as $SHARD_DIR')}
          {field('cpu', 'CPUs', (p) => <input {...p} value={form.cpu} onChange={(e) => set('cpu', e.target.value)} />)}
          {field('memory', 'Memory', (p) => <input {...p} value={form.memory} onChange={(e) => set('memory', e.target.value)} />, 'e.g. 16Gi')}
          {field('command', 'Command', (p) => <textarea {...p} rows={3} value={form.command} onChange={(e) => set('command', e.target.value)} />)}
          {field('priority', 'Priority', (p) => <input {...p} type="number" value={form.priority} onChange={(e) => set('priority', Number(e.target.value))} />)}
          {field('timeLimit', 'Time limit (optional)', (p) => <input {...p} value={form.timeLimit} onChange={(e) => set('timeLimit', e.target.value)} />, 'seconds or e.g. 2:00:00')}
          <div className="checks">
            <label><input type="checkbox" checked={form.preemptible} onChange={(e) => set('preemptible', e.target.checked)} /> Preemptible</label>
            <label><input type="checkbox" checked={form.checkpoint} onChange={(e) => set('checkpoint', e.target.checked)} /> Checkpoints</label>
          </div>
          {general.length > 0 && <ul className="error" role="alert" data-testid="spec-errors">{general.map((e, i) => <li key={i}>{e.path === '(root)' ? '' : `${e.path}: `}{e.message}</li>)}</ul>}
          <p role="status" className="muted" data-testid="validity">{checked === 'ok' ? 'The server accepts this spec.' : checked === 'checking' ? 'Checking…' : checked === 'bad' ? 'Fix the fields marked above.' : ''}</p>
          {message && <p className="error" role="alert">{message}</p>}
          <button type="submit" disabled={submitting}>Submit job</button>
        </form>
        <figure className="yaml">
          <figcaption>The same job as YAML (<code>tide submit job.yaml</code>)</figcaption>
          <pre data-testid="yaml" tabIndex={0}>{yaml}</pre>
        </figure>
      </div>
    </section>
  );
}
