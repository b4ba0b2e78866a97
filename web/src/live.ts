/**
 * The live stream (GET /v1/stream, server-sent events read through fetch so that the token goes
 * in the Authorization header, never in a URL). Views subscribe to `job`, `event` and `nodes`;
 * the stream reconnects by itself (1 s, then up to 10 s apart) and says `reconnected` so views
 * reload what they may have missed.
 */
import { currentToken } from './api.ts';
import type { Job, JobEvent, NodeInfo } from './types.ts';

export interface LiveMessages {
  job: { job: Job };
  event: { event: JobEvent };
  nodes: { nodes: NodeInfo[] };
  hello: { eventId: number; role: string; tenant: string | null };
  status: { connected: boolean };
  reconnected: Record<string, never>;
}
type Name = keyof LiveMessages;
type Handler<K extends Name> = (data: LiveMessages[K]) => void;

const handlers = new Map<Name, Set<Handler<Name>>>();
let lastNodes: NodeInfo[] = [];
let connected = false;

/** When the last message arrived (performance.now()), for the update-time figure. */
export const timing = { receivedAt: 0 };

export function on<K extends Name>(name: K, h: Handler<K>): () => void {
  let set = handlers.get(name);
  if (!set) handlers.set(name, (set = new Set()));
  set.add(h as Handler<Name>);
  return () => set.delete(h as Handler<Name>);
}

function emit<K extends Name>(name: K, data: LiveMessages[K]): void {
  for (const h of handlers.get(name) ?? []) h(data as LiveMessages[Name]);
}

export const latestNodes = (): NodeInfo[] => lastNodes;
export const isConnected = (): boolean => connected;

let controller: AbortController | null = null;

/** Starts (or restarts) the stream for the current token. */
export function startLive(): void {
  stopLive();
  const c = new AbortController();
  controller = c;
  void run(c);
}

export function stopLive(): void {
  controller?.abort();
  controller = null;
}

async function run(c: AbortController): Promise<void> {
  let delay = 1000;
  let first = true;
  while (!c.signal.aborted) {
    try {
      const res = await fetch('/v1/stream', { headers: { authorization: `Bearer ${currentToken() ?? ''}`, accept: 'text/event-stream' }, signal: c.signal });
      if (!res.ok || !res.body) throw new Error(`stream: ${res.status}`);
      connected = true;
      emit('status', { connected: true });
      if (!first) emit('reconnected', {});
      first = false;
      delay = 1000;
      await read(res.body, c.signal);
    } catch {
      if (c.signal.aborted) return;
    }
    connected = false;
    emit('status', { connected: false });
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10_000);
  }
}

async function read(body: ReadableStream<Uint8Array>, signal: AbortSignal): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let at: number;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      let event = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (!data) continue;
      timing.receivedAt = performance.now();
      const parsed = JSON.parse(data) as LiveMessages[Name];
      if (event === 'nodes') lastNodes = (parsed as LiveMessages['nodes']).nodes;
      if (event === 'job' || event === 'event' || event === 'nodes' || event === 'hello') emit(event, parsed as never);
    }
  }
}
