/** Hash routes (#/jobs/12): the server serves one page at `/` and needs no fallback route. */
import { useEffect, useState } from 'react';

export interface Route {
  readonly view: 'cluster' | 'queues' | 'jobs' | 'job' | 'submit' | 'whatif';
  readonly id?: string;
  readonly params: URLSearchParams;
}

export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#\/?/, '').split('?');
  const [head, id] = path.split('/');
  const params = new URLSearchParams(query);
  if (head === 'jobs' && id) return { view: 'job', id, params };
  if (head === 'queues' || head === 'jobs' || head === 'submit' || head === 'whatif') return { view: head, params };
  return { view: 'cluster', params };
}

export function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const f = (): void => setHash(location.hash);
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return parseRoute(hash);
}

export const go = (hash: string): void => {
  location.hash = hash;
};
