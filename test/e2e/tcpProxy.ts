/**
 * A TCP proxy on 127.0.0.1 that can be cut, to partition one agent from the server while both
 * stay alive. `cut('reset')` closes every connection and refuses new ones; `cut('blackhole')`
 * accepts connections but forwards nothing (as a dropped network link: the client waits for its
 * own timeout). `heal()` lets traffic through again. The upstream may be down (a restarting
 * server): a connection to it then fails as it would without the proxy.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export type CutMode = 'reset' | 'blackhole';

export class TcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private mode: CutMode | null = null;
  port = 0;

  constructor(
    private readonly upstreamPort: number,
    private readonly upstreamHost = '127.0.0.1',
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get isCut(): boolean {
    return this.mode !== null;
  }

  async listen(port = 0): Promise<void> {
    const server = createServer((client) => this.accept(client));
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(port, '127.0.0.1', () => ok());
    });
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    this.server = server;
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => s.destroy());
  }

  private accept(client: Socket): void {
    this.track(client);
    if (this.mode === 'reset') return void client.resetAndDestroy();
    if (this.mode === 'blackhole') return void client.pause(); // held open, nothing forwarded
    const upstream = createConnection({ port: this.upstreamPort, host: this.upstreamHost });
    this.track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  /** Drops every open connection and handles new ones as `mode` says until heal(). */
  cut(mode: CutMode): void {
    this.mode = mode;
    for (const s of this.sockets) s.destroy();
  }

  heal(): void {
    // Black-holed connections are dropped: the client sees its request fail, then reconnects.
    for (const s of this.sockets) if (this.mode === 'blackhole') s.destroy();
    this.mode = null;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()));
    this.server = null;
  }
}
