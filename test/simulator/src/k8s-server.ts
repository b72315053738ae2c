import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClusterState, WatchEvent } from './cluster-state.js';
import type { K8sObject } from './k8s-objects.js';
import { matcher, type Matcher } from './selectors.js';

/**
 * The fake kube-apiserver: GET list / get / watch of pods and nodes over plain HTTP, with the real wire shapes
 * (lists with metadata.resourceVersion, newline-delimited watch events, BOOKMARK, ERROR Status 410 "Expired").
 */
export interface K8sServerOptions {
  bookmarkIntervalMs: number;
  goneMode: 'event' | 'http';
  /** A watch that names no timeoutSeconds ends after a random time in [this, 2 × this) (watchTimeoutMs). */
  minWatchTimeoutMs: number;
  random?: () => number;
  /** Test controls served under POST /simulator/<name> (for a simulator run as a separate process). */
  controls?: Record<string, () => unknown>;
}

interface OpenWatch {
  res: ServerResponse;
  allowBookmarks: boolean;
  kind: 'Pod' | 'Node';
  /** Open during a stall (or opened in one): it sends nothing more, ever, until the server ends it. */
  stalled: boolean;
  /** Ends the stream cleanly (a timeout, a dropped proxy connection). */
  close: () => void;
  /** Destroys the connection mid-stream, as a server shutting down does. */
  cut: () => void;
}

const status = (code: number, reason: string, message: string) => ({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message,
  reason,
  code,
});

function route(pathname: string): { kind: 'Pod' | 'Node'; namespace?: string; name?: string } | undefined {
  let m = /^\/api\/v1\/pods\/?$/.exec(pathname);
  if (m) return { kind: 'Pod' };
  m = /^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+))?\/?$/.exec(pathname);
  if (m)
    return {
      kind: 'Pod',
      namespace: decodeURIComponent(m[1]!),
      ...(m[2] ? { name: decodeURIComponent(m[2]) } : {}),
    };
  m = /^\/api\/v1\/nodes(?:\/([^/]+))?\/?$/.exec(pathname);
  if (m) return { kind: 'Node', ...(m[1] ? { name: decodeURIComponent(m[1]) } : {}) };
  return undefined;
}

/** kube-apiserver's --min-request-timeout default (1800 s). */
export const DEFAULT_MIN_WATCH_TIMEOUT_MS = 1_800_000;

/**
 * How long a watch stays open: its timeoutSeconds, else, as kube-apiserver does, the minimum request timeout
 * times a random factor in [1, 2), so that clients re-watch spread out rather than all at once.
 */
export function watchTimeoutMs(
  timeoutSeconds: number | undefined,
  minWatchTimeoutMs: number,
  random: () => number = Math.random,
): number {
  if (timeoutSeconds !== undefined && timeoutSeconds > 0) return timeoutSeconds * 1000;
  return Math.floor(minWatchTimeoutMs * (1 + random()));
}

export class K8sServer {
  readonly server: Server;
  private readonly watches = new Set<OpenWatch>();
  private stalling = false;
  private closed = false;

  constructor(
    private readonly state: ClusterState,
    private readonly options: K8sServerOptions,
  ) {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  private send(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/version')
      return this.send(res, 200, { major: '1', minor: '30', gitVersion: 'v1.30.4-gpu-meter-sim' });
    const control = /^\/simulator\/([a-z-]+)$/.exec(url.pathname);
    if (control && this.options.controls?.[control[1]!]) {
      if (req.method !== 'POST' && control[1] !== 'status')
        return this.send(res, 405, status(405, 'MethodNotAllowed', 'use POST'));
      return this.send(res, 200, this.options.controls[control[1]!]!() ?? { ok: true });
    }
    if (url.pathname === '/healthz' || url.pathname === '/readyz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return void res.end('ok');
    }
    const target = route(url.pathname);
    if (!target)
      return this.send(
        res,
        404,
        status(404, 'NotFound', `the server could not find the requested resource ${url.pathname}`),
      );
    if (req.method !== 'GET')
      return this.send(
        res,
        405,
        status(405, 'MethodNotAllowed', `${req.method} is not supported by the simulator`),
      );
    const q = url.searchParams;
    if (target.name !== undefined) {
      const object = this.state.get(target.kind, target.namespace ?? '', target.name);
      if (!object)
        return this.send(
          res,
          404,
          status(404, 'NotFound', `${target.kind.toLowerCase()}s "${target.name}" not found`),
        );
      return this.send(res, 200, object);
    }
    const inNamespace: Matcher = (o) =>
      target.namespace === undefined || o.metadata.namespace === target.namespace;
    const selected = matcher(q.get('labelSelector') ?? undefined, q.get('fieldSelector') ?? undefined);
    const matches = (o: K8sObject) => inNamespace(o) && selected(o);
    if (q.get('watch') === 'true' || q.get('watch') === '1') return this.watch(res, target.kind, matches, q);
    const items = this.state
      .list(target.kind)
      .filter(matches)
      .map(({ kind: _kind, apiVersion: _apiVersion, ...item }) => item);
    this.send(res, 200, {
      kind: `${target.kind}List`,
      apiVersion: 'v1',
      metadata: { resourceVersion: String(this.state.resourceVersion) },
      items,
    });
  }

  private watch(res: ServerResponse, kind: 'Pod' | 'Node', matches: Matcher, q: URLSearchParams): void {
    const rvParam = q.get('resourceVersion') ?? '';
    let replay: WatchEvent[];
    if (rvParam === '' || rvParam === '0') {
      replay = this.state.list(kind).map((object) => ({ rv: 0, type: 'ADDED', kind, object }));
    } else {
      const since = this.state.eventsSince(kind, Number(rvParam));
      if (since === 'gone') {
        const gone = status(
          410,
          'Expired',
          `too old resource version: ${rvParam} (${this.state.resourceVersion})`,
        );
        if (this.options.goneMode === 'http') return this.send(res, 410, gone);
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(`${JSON.stringify({ type: 'ERROR', object: gone })}\n`);
      }
      replay = since;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' });
    // Clients (client-node's Watch) resolve on the response headers; send them before the first event.
    res.flushHeaders();
    const allowBookmarks = q.get('allowWatchBookmarks') === 'true';
    const entry: OpenWatch = {
      res,
      allowBookmarks,
      kind,
      stalled: this.stalling,
      close: () => {
        cleanup();
        res.end();
      },
      cut: () => {
        cleanup();
        res.destroy();
      },
    };
    const write = (type: string, object: unknown) => {
      if (!entry.stalled) res.write(`${JSON.stringify({ type, object })}\n`);
    };
    for (const e of replay) if (matches(e.object)) write(e.type, e.object);
    const unsubscribe = this.state.subscribe((e) => {
      if (e.kind === kind && matches(e.object)) write(e.type, e.object);
    });
    const bookmarks = allowBookmarks
      ? setInterval(() => this.bookmark(entry), this.options.bookmarkIntervalMs)
      : undefined;
    const timeoutSeconds = q.has('timeoutSeconds') ? Number(q.get('timeoutSeconds')) : undefined;
    // A stalled watch hangs past its timeout too: nothing ends it but the server's recovery.
    const timeout = setTimeout(
      () => {
        if (!entry.stalled) entry.close();
      },
      watchTimeoutMs(timeoutSeconds, this.options.minWatchTimeoutMs, this.options.random),
    );
    const cleanup = () => {
      unsubscribe();
      clearInterval(bookmarks);
      clearTimeout(timeout);
      this.watches.delete(entry);
    };
    res.on('close', cleanup);
    this.watches.add(entry);
  }

  private bookmark(w: OpenWatch): void {
    if (!w.allowBookmarks || w.stalled) return;
    const object = {
      kind: w.kind,
      apiVersion: 'v1',
      metadata: { resourceVersion: String(this.state.resourceVersion) },
    };
    w.res.write(`${JSON.stringify({ type: 'BOOKMARK', object })}\n`);
  }

  sendBookmarks(): void {
    for (const w of this.watches) this.bookmark(w);
  }

  /**
   * A hung watch cache: from now on every open watch, and every watch opened until `resumeWatches`, stays
   * open and sends nothing (no event, no bookmark, no end). Lists and gets still answer the current state.
   */
  stallWatches(): void {
    this.stalling = true;
    for (const w of this.watches) w.stalled = true;
  }

  /**
   * Ends the stall: new watches work again, and the watches that hung are ended (as a recovering server
   * does), so their clients re-watch from their last version and get what they missed replayed.
   */
  resumeWatches(): void {
    this.stalling = false;
    for (const w of [...this.watches]) if (w.stalled) w.close();
  }

  get watchesStalled(): boolean {
    return this.stalling;
  }

  /**
   * Ends every open watch as a dropped connection does (a proxy, a network blip): the server keeps its watch
   * cache, so clients resume from their last version without a relist. A restart is `restart`.
   */
  dropWatches(): void {
    for (const w of [...this.watches]) w.close();
  }

  get openWatches(): number {
    return this.watches.size;
  }

  /**
   * A kube-apiserver restart: every watch is cut mid-stream (client-node: "Premature close"), and a resume
   * from any version before it answers 410 Gone, so clients relist. A restarted server's watch cache starts
   * at the current etcd revision, which its own start-up writes (leases, endpoints) have moved past what
   * any client last saw. With `downMs` the port refuses connections for that long first. Ends a stall too: a restart is how a hung cache recovers.
   */
  async restart({ downMs = 0 }: { downMs?: number } = {}): Promise<void> {
    this.state.expire();
    this.stalling = false;
    // A server going down ends no chunked stream: clients see the connection cut ("Premature close").
    for (const w of [...this.watches]) w.cut();
    if (downMs <= 0 || this.closed) return;
    const { address, port } = this.server.address() as AddressInfo;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await stopped;
    await new Promise((resolve) => setTimeout(resolve, downMs));
    if (this.closed) return;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, address, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.dropWatches();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
