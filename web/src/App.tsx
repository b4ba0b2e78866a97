/** The shell: sign-in, the navigation, the live-stream status and the current view. */
import { useEffect, useState, type FormEvent } from 'react';
import { api, ApiFailure, currentToken, setToken } from './api.ts';
import { on, startLive, stopLive } from './live.ts';
import { useRoute } from './route.ts';
import type { Session } from './types.ts';
import { ClusterView } from './views/Cluster.tsx';
import { JobPage } from './views/JobPage.tsx';
import { JobsView } from './views/Jobs.tsx';
import { QueuesView } from './views/Queues.tsx';
import { SubmitView } from './views/Submit.tsx';
import { WhatIfView } from './views/WhatIf.tsx';

const VIEWS = [
  ['cluster', 'Cluster'],
  ['queues', 'Queues'],
  ['jobs', 'Jobs'],
  ['submit', 'Submit'],
  ['whatif', 'What-if'],
] as const;

const SESSION_KEY = 'tide.session';

/** The session remembered with the token: the views start at once, while /v1/session confirms it. */
function rememberedSession(): Session | null {
  if (currentToken() === null) return null;
  try {
    const s = JSON.parse(localStorage.getItem(SESSION_KEY) ?? 'null') as Session | null;
    return s && (s.role === 'admin' || s.role === 'tenant') ? s : null;
  } catch {
    return null;
  }
}

function keep(s: Session | null): void {
  if (s) localStorage.setItem(SESSION_KEY, JSON.stringify(s));
  else localStorage.removeItem(SESSION_KEY);
}

export function App() {
  const [session, setSessionState] = useState<Session | null>(rememberedSession);
  const [checking, setChecking] = useState(currentToken() !== null && session === null);
  const setSession = (s: Session | null): void => {
    keep(s);
    setSessionState(s);
  };
  useEffect(() => {
    if (currentToken() === null) return;
    api<Session>('/v1/session')
      .then((s) => {
        const before = rememberedSession();
        // The same session as remembered: keep the object, so nothing restarts.
        if (!before || before.role !== s.role || before.tenant !== s.tenant) setSession(s);
      })
      .catch((e: unknown) => {
        if (e instanceof ApiFailure && e.status === 401) {
          setToken(null);
          setSession(null);
        }
      })
      .finally(() => setChecking(false));
  }, []);
  useEffect(() => {
    if (!session) return undefined;
    startLive();
    return stopLive;
  }, [session]);
  if (checking) return <main className="signin"><p>Signing in…</p></main>;
  if (!session) return <SignIn onSession={setSession} />;
  return <Shell session={session} onSignOut={() => { setToken(null); setSession(null); }} />;
}

function SignIn({ onSession }: { onSession: (s: Session) => void }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setToken(value.trim());
    try {
      onSession(await api<Session>('/v1/session'));
    } catch (err) {
      setToken(null);
      setError(err instanceof ApiFailure && err.status === 401 ? 'That token is not valid (unknown, expired or revoked).' : (err as Error).message);
    }
  };
  return (
    <main className="signin">
      <h1>Tide</h1>
      <form onSubmit={(e) => void submit(e)} aria-describedby="signin-help">
        <label htmlFor="token">API token</label>
        <input id="token" name="token" type="password" autoComplete="current-password" value={value} onChange={(e) => setValue(e.target.value)} required aria-invalid={error !== null} aria-describedby={error ? 'signin-error' : undefined} />
        <button type="submit">Sign in</button>
        {error && <p id="signin-error" className="error" role="alert">{error}</p>}
        <p id="signin-help" className="muted">A tenant token shows that tenant's jobs and queues; the admin token shows all. <code>tide up</code> writes them to <code>.tide/credentials.json</code>.</p>
      </form>
    </main>
  );
}

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const route = useRoute();
  const [live, setLive] = useState(false);
  useEffect(() => on('status', (s) => setLive(s.connected)), []);
  const current = route.view === 'job' ? 'jobs' : route.view;
  return (
    <>
      <header className="top">
        <a className="brand" href="#/cluster">Tide</a>
        <nav aria-label="Main">
          <ul>
            {VIEWS.map(([view, label]) => (
              <li key={view}><a href={`#/${view}`} aria-current={current === view ? 'page' : undefined}>{label}</a></li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <span className={live ? 'dot on' : 'dot'} role="status" aria-label={live ? 'live updates connected' : 'live updates disconnected'} title={live ? 'live' : 'reconnecting'} />
          <span data-testid="who">{session.role === 'admin' ? 'admin' : `tenant ${session.tenant ?? ''}`}</span>
          <button type="button" className="link" onClick={onSignOut}>Sign out</button>
        </div>
      </header>
      <main id="main">
        {route.view === 'cluster' && <ClusterView session={session} />}
        {route.view === 'queues' && <QueuesView session={session} />}
        {route.view === 'jobs' && <JobsView session={session} params={route.params} />}
        {route.view === 'job' && route.id !== undefined && <JobPage key={route.id} id={route.id} session={session} />}
        {route.view === 'submit' && <SubmitView session={session} />}
        {route.view === 'whatif' && <WhatIfView session={session} />}
      </main>
    </>
  );
}
