/**
 * How the server talks to agents, and to nothing else: an agent's registered address must be an
 * http URL on the very IP address its registration came from (so a holder of an agent token
 * cannot point the server at another host, a cloud metadata address or a database port), and a
 * read from an agent follows no redirect and takes at most a bounded number of bytes. The
 * server proves itself to an agent with that node's own log key (agentLogKey), never with a
 * secret another agent holds.
 */
import { createHmac } from 'node:crypto';

/**
 * The key the server reads one node's logs with, and that node's agent alone accepts: an HMAC of
 * the node's name under the admin token (which every server of an HA cluster shares and no agent
 * holds), so no table and no migration keep it, and one node's key opens no other node's logs.
 * The agent learns it only from answers to its own node's credential (register, heartbeat);
 * rotating the admin token rotates every key, and agents take the new one at their next heartbeat.
 */
export function agentLogKey(adminToken: string, node: string): string {
  return `tide_logkey_${createHmac('sha256', adminToken).update(`tide agent log key\n${node}`).digest('base64url')}`;
}

/** Node keys kept by agentLogKeys at most (node names come from registrations: bounded). */
const LOG_KEYS_KEPT = 100_000;

/**
 * agentLogKey under one admin token, each node's key made once: every heartbeat's answer carries
 * it, an HMAC each (625 a second at 1,250 agents).
 */
export function agentLogKeys(adminToken: string): (node: string) => string {
  const kept = new Map<string, string>();
  return (node) => {
    let key = kept.get(node);
    if (key === undefined) {
      if (kept.size >= LOG_KEYS_KEPT) kept.clear();
      kept.set(node, (key = agentLogKey(adminToken, node)));
    }
    return key;
  };
}

/** The address part of a socket's remote address: "::ffff:127.0.0.1" is 127.0.0.1. */
export function plainIp(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return (v4 ? v4[1] : ip) ?? ip;
}

/** What is wrong with an agent's address given where its registration came from, or null. */
export function agentAddressProblem(address: string, remoteIp: string): string | null {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    return 'must be the http://IP:PORT URL the agent listens on';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must be http or https, not ${url.protocol.replace(':', '')}`;
  if (url.username || url.password || url.search || url.hash) return 'must be scheme://IP:PORT[/path] with no credentials, query or fragment';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const from = plainIp(remoteIp);
  if (host !== from) return `host ${host} is not the address this registration came from (${from}): the server reaches an agent only where it registered from`;
  return null;
}

/**
 * Reads at most `limit` bytes of a response body; more is an error (a hostile agent cannot flood
 * the server). Bytes, not text: a log chunk may end inside a UTF-8 character.
 */
export async function boundedBody(res: Response, limit: number): Promise<Buffer> {
  const reader = res.body?.getReader();
  if (!reader) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new Error(`answer larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}
