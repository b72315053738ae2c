import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A schema registry as one service sees it when the registry is down, without stopping the shared one: an
 * HTTP proxy in front of the stack's registry that passes requests through or fails them the way a down
 * registry does. (The stack's Apicurio keeps its schemas in memory: a real stop and start would come back
 * empty, i.e. lost storage with new ids, not an outage, and would break every other user of the stack.)
 *
 * - `up`: passed through.
 * - `refused`: the connection is reset before any answer (the registry process is gone).
 * - `not-found`: 404 `404 page not found` (text/plain) to everything, as an ingress or gateway answers for a
 *   registry with no ready backend — the answer a client cannot tell from "unknown schema id" by itself.
 * - `unavailable`: 503 from the gateway.
 *
 * `armed(mode)` passes everything through until the first look-up of a schema by id (`GET /schemas/ids/N`),
 * and from that request on answers with `mode`: the outage starts exactly when a cold decoder first needs
 * the registry, after its start-up registrations went through.
 */
export type RegistryMode = 'up' | 'refused' | 'not-found' | 'unavailable';

export class RegistryProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private mode: RegistryMode = 'up';
  private armedMode: RegistryMode | undefined;
  private readonly target: URL;
  /** Requests answered per mode (`up` = passed through), and schema look-ups by id seen. */
  readonly answered: Record<RegistryMode, number> = { up: 0, refused: 0, 'not-found': 0, unavailable: 0 };
  lookups = 0;
  /** When the armed outage began (epoch ms), once it has. */
  armedAtMs: number | undefined;

  constructor(registryUrl: string) {
    this.target = new URL(registryUrl);
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    // Never keeps the harness alive by itself.
    this.server.unref();
  }

  /** Listens on a free port; returns the URL to give a service (same path as the registry's). */
  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}${this.target.pathname.replace(/\/$/, '')}`;
  }

  set(mode: RegistryMode): void {
    this.armedMode = undefined;
    this.mode = mode;
  }

  arm(mode: RegistryMode): void {
    this.mode = 'up';
    this.armedMode = mode;
  }

  get current(): RegistryMode {
    return this.mode;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.method === 'GET' && /\/schemas\/ids\/\d+/.test(req.url ?? '')) {
      this.lookups += 1;
      if (this.armedMode !== undefined) {
        this.mode = this.armedMode;
        this.armedMode = undefined;
        this.armedAtMs = Date.now();
      }
    }
    const mode = this.mode;
    this.answered[mode] += 1;
    if (mode === 'refused') return void req.socket.destroy();
    if (mode === 'not-found' || mode === 'unavailable') {
      req.resume();
      const code = mode === 'not-found' ? 404 : 503;
      res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
      return void res.end(code === 404 ? '404 page not found\n' : 'no healthy upstream\n');
    }
    const upstream = request(
      {
        host: this.target.hostname,
        port: this.target.port,
        method: req.method,
        path: req.url ?? '/',
        headers: { ...req.headers, host: this.target.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => req.socket.destroy());
    req.pipe(upstream);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
