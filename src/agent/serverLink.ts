/**
 * How an agent talks to a server: JSON POSTs over node:http(s), optionally from a given local
 * address (an agent told `--listen 10.0.0.5` also connects from 10.0.0.5, so the address it
 * registers is the one the server sees its requests come from: see server/agentLink.ts), and
 * which local address this machine uses to reach a server (what an agent registers by default).
 */
import { request as httpRequest, Agent as HttpAgent, type IncomingMessage } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { connect } from 'node:net';

/** The most of a server's answer an agent reads (a heartbeat's desired tasks are far smaller). */
const MAX_ANSWER = 64 * 1024 * 1024;

/** The address part of a socket address: "::ffff:127.0.0.1" is 127.0.0.1. */
export function plainAddress(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return (v4 ? v4[1] : ip) ?? ip;
}

/**
 * Which connections a request goes over: `main` (heartbeats, waits, registration: as many as are
 * in use at once, kept alive), or `lease`, one connection of its own for lease renewals (see
 * agent.ts renewLeaseIfDue), kept open so that a renewal never waits for a new connection to be
 * accepted: a server busy with a burst accepted new connections one per accept callback, whose
 * microtasks could carry a 200-400 ms statement, and renewals on fresh connections waited up to
 * 20 s for it (docs/scale.md, tenth pass).
 */
export type Lane = 'main' | 'lease';

export class ServerLink {
  private readonly agents: Record<Lane, { readonly http: HttpAgent; readonly https: HttpsAgent }>;

  /** localAddress: the address outgoing connections come from (none: the system's choice). */
  constructor(readonly localAddress: string | undefined) {
    const opts = { keepAlive: true, ...(localAddress ? { localAddress } : {}) };
    const lease = { ...opts, maxSockets: 1 };
    this.agents = { main: { http: new HttpAgent(opts), https: new HttpsAgent(opts) }, lease: { http: new HttpAgent(lease), https: new HttpsAgent(lease) } };
  }

  /** POSTs JSON with a bearer token; the answer's status and parsed body (null if not JSON). */
  post(url: string, token: string, body: unknown, timeoutMs: number, lane: Lane = 'main'): Promise<{ status: number; json: unknown }> {
    const u = new URL(url);
    const secure = u.protocol === 'https:';
    const data = Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = (secure ? httpsRequest : httpRequest)(
        u,
        {
          method: 'POST',
          agent: secure ? this.agents[lane].https : this.agents[lane].http,
          headers: { 'content-type': 'application/json', 'content-length': data.length, authorization: `Bearer ${token}` },
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_ANSWER) req.destroy(new Error(`${u.origin}: answer larger than ${MAX_ANSWER} bytes`));
            else chunks.push(c);
          });
          res.on('end', () => {
            let json: unknown = null;
            try {
              json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              /* not JSON: null */
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
          res.on('error', reject);
        },
      );
      // The whole exchange within timeoutMs, as fetch's AbortSignal.timeout did (not only between bytes).
      const timer = setTimeout(() => req.destroy(new Error(`${u.origin}: no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('close', () => clearTimeout(timer));
      req.on('error', reject);
      req.end(data);
    });
  }

  /**
   * The local address this machine reaches a server's URL from (opens a connection and closes
   * it): the address the server sees its requests come from, unless a NAT is in between.
   */
  localAddressToward(url: string, timeoutMs: number): Promise<string> {
    const u = new URL(url);
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    const host = u.hostname.replace(/^\[|\]$/g, '');
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, timeout: timeoutMs, ...(this.localAddress ? { localAddress: this.localAddress } : {}) });
      socket.once('connect', () => {
        const local = socket.localAddress;
        socket.destroy();
        if (local) resolve(plainAddress(local));
        else reject(new Error(`${u.origin}: no local address`));
      });
      socket.once('timeout', () => socket.destroy(new Error(`${u.origin}: no connection within ${timeoutMs} ms`)));
      socket.once('error', reject);
    });
  }

  close(): void {
    for (const a of Object.values(this.agents)) {
      a.http.destroy();
      a.https.destroy();
    }
  }
}
