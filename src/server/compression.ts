/**
 * gzip for large answers, as the Kubernetes API server compresses lists over 128 KB
 * (APIResponseCompression). A 1,250-node list is 1.5 MB of JSON: written to the socket it held
 * the request thread ~8 ms a read, while the same list gzipped (~100 KB, 15× smaller) took 0.1 ms
 * to write. Compression runs on zlib's thread pool, not on the request thread, at level 1 (the
 * ratio of JSON barely improves above it). A client that does not send `Accept-Encoding: gzip`
 * (or sends `gzip;q=0`) gets the answer as it was; fetch, curl --compressed and browsers send it.
 */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { FastifyInstance } from 'fastify';

/** Answers smaller than this are sent as they are (Kubernetes' threshold). */
export const COMPRESS_MIN_BYTES = 128 * 1024;

const gzipAsync = promisify(gzip);

const compressed = new WeakMap<Buffer, Promise<Buffer>>();

/** The gzip of a Buffer, made once while the Buffer lives (a route may make it ahead of its readers: GET /v1/nodes). */
export function gzipKept(body: Buffer): Promise<Buffer> {
  let gz = compressed.get(body);
  if (gz === undefined) compressed.set(body, (gz = gzipAsync(body, { level: 1 })));
  return gz;
}

/** Whether an Accept-Encoding header allows gzip: listed (or `*`) with a q-value above 0. */
export function acceptsGzip(header: string | string[] | undefined): boolean {
  if (header === undefined) return false;
  let star: boolean | undefined;
  for (const part of (Array.isArray(header) ? header.join(',') : header).split(',')) {
    const [name = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    const allowed = q === undefined || Number(q.slice(2)) > 0;
    if (name === 'gzip' || name === 'x-gzip') return allowed;
    if (name === '*') star = allowed;
  }
  return star === true;
}

/**
 * Compresses every answer of COMPRESS_MIN_BYTES or more that the client accepts gzipped. A
 * Buffer answer is compressed once and kept while the Buffer lives (a route that answers the
 * same Buffer again, as GET /v1/nodes does while its list is unchanged, pays for one gzip); a
 * string is compressed each time. Streams and answers already encoded are left alone.
 */
export function registerCompression(app: FastifyInstance, minBytes = COMPRESS_MIN_BYTES): void {
  app.addHook('onSend', async (req, reply, payload) => {
    if (typeof payload !== 'string' && !Buffer.isBuffer(payload)) return payload;
    if (reply.statusCode === 204 || reply.statusCode === 304 || reply.hasHeader('content-encoding')) return payload;
    const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    if (size < minBytes) return payload;
    const vary = reply.getHeader('vary');
    void reply.header('vary', vary === undefined ? 'accept-encoding' : `${String(vary)}, accept-encoding`);
    if (!acceptsGzip(req.headers['accept-encoding'])) return payload;
    const out = await (typeof payload === 'string' ? gzipAsync(payload, { level: 1 }) : gzipKept(payload));
    void reply.header('content-encoding', 'gzip').removeHeader('content-length');
    return out;
  });
}
