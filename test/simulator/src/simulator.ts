import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ClusterState } from './cluster-state.js';
import { createDcgmServer, type DcgmExtras } from './dcgm.js';
import type { K8sObject } from './k8s-objects.js';
import { DEFAULT_MIN_WATCH_TIMEOUT_MS, K8sServer } from './k8s-server.js';
import { buildModel, gpuUuid, podUid, type ClusterModel } from './model.js';
import type { Scenario } from './scenario.js';
import { buildTimeline } from './timeline.js';

/**
 * Plays a scenario: the fake Kubernetes API and the fake DCGM exporter over one cluster model, moved by a clock
 * — real time when played live, or a manual clock that only tests move.
 */
export interface SimulatorOptions {
  scenario: Scenario;
  /** Scenario start, epoch ms. Default scenario.startMs, else now aligned down to alignMs. */
  startMs?: number;
  alignMs?: number;
  clock?: 'manual' | 'real';
  host?: string;
  k8sPort?: number;
  dcgmPort?: number;
  bookmarkIntervalMs?: number;
  goneMode?: 'event' | 'http';
  /**
   * A watch without timeoutSeconds ends after a random time in [this, 2 × this); default 30 min, as
   * kube-apiserver's --min-request-timeout (so watches end on their own after 30 to 60 min).
   */
  minWatchTimeoutMs?: number;
}

export interface Simulator {
  readonly k8sUrl: string;
  readonly dcgmBaseUrl: string;
  /** Scenario start, epoch ms; later after `postpone`. */
  readonly startMs: number;
  readonly model: ClusterModel;
  /**
   * Moves a real-clock scenario that has not begun to a later start, e.g. while the services under test are
   * still starting on a loaded machine. Throws once the start has passed.
   */
  postpone(startMs: number): void;
  dcgmUrl(node: string): string;
  now(): number;
  setTime(epochMs: number): Promise<void>;
  advance(ms: number): Promise<void>;
  resourceVersion(): number;
  expireWatchHistory(options?: { dropWatches?: boolean }): void;
  /** Ends every open watch connection; the server keeps its cache, so clients resume without a relist. */
  dropWatches(): void;
  /**
   * A kube-apiserver restart: every watch is cut mid-stream and a resume from before it answers 410 Gone
   * (clients relist); with `downMs` the API refuses connections for that long first.
   */
  restart(options?: { downMs?: number }): Promise<void>;
  sendBookmarks(): void;
  openWatches(): number;
  /**
   * The API's watch cache hangs: open and new watches send nothing (no event, bookmark or end) until
   * `resumeWatches`, which ends the hung ones; lists still answer the current state.
   */
  stallWatches(): void;
  resumeWatches(): void;
  /** Creates (or replaces) an object that is not in the scenario, e.g. a tenant's pod; kept until the end. */
  putObject(object: K8sObject): Promise<void>;
  /**
   * Serves an extra exporter page at `/pages/<name>` of the DCGM server, rendered at the scenario offset of
   * each request (e.g. a forged exporter); returns its path.
   */
  serveDcgmPage(name: string, render: (offsetMs: number) => string): string;
  /** GET requests the DCGM server received for `path` (served or not). */
  dcgmRequests(path: string): number;
  /** Edits a current pod's labels now (a MODIFIED event; kept on its later changes). Throws if absent. */
  setPodLabels(namespace: string, name: string, labels: Record<string, string>): Promise<void>;
  podUid(namespace: string, name: string): string;
  gpuUuid(node: string, index: number): string;
  close(): Promise<void>;
}

async function listen(server: Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  const { scenario } = options;
  const host = options.host ?? '127.0.0.1';
  const alignMs = options.alignMs ?? 15_000;
  let startMs = options.startMs ?? scenario.startMs ?? Math.floor(Date.now() / alignMs) * alignMs;
  const real = (options.clock ?? 'manual') === 'real';
  let manualNow = startMs;
  const now = () => (real ? Date.now() : manualNow);

  const model = buildModel(scenario);
  const extras: DcgmExtras = { pages: new Map(), requests: new Map() };
  const dcgm = createDcgmServer(model, () => now() - startMs, extras);
  const dcgmPort = await listen(dcgm, host, options.dcgmPort ?? 0);
  const state = new ClusterState(buildTimeline({ model, startMs, dcgmHost: host, dcgmPort }));
  state.advanceTo(now() - startMs);
  const k8s: K8sServer = new K8sServer(state, {
    bookmarkIntervalMs: options.bookmarkIntervalMs ?? 5000,
    goneMode: options.goneMode ?? 'event',
    minWatchTimeoutMs: options.minWatchTimeoutMs ?? DEFAULT_MIN_WATCH_TIMEOUT_MS,
    controls: {
      status: () => ({
        startMs,
        now: now(),
        resourceVersion: state.resourceVersion,
        openWatches: k8s.openWatches,
        watchesStalled: k8s.watchesStalled,
      }),
      'expire-history': () => {
        state.expire();
        k8s.dropWatches();
      },
      'drop-watches': () => k8s.dropWatches(),
      restart: () => void k8s.restart(),
      bookmarks: () => k8s.sendBookmarks(),
      'stall-watches': () => k8s.stallWatches(),
      'resume-watches': () => k8s.resumeWatches(),
    },
  });
  let k8sPort: number;
  try {
    k8sPort = await listen(k8s.server, host, options.k8sPort ?? 0);
  } catch (error) {
    dcgm.close();
    throw error;
  }

  // Real clock: wake at each due change (and at least every 1 s, so a suspended timer cannot stall the cluster).
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const tick = () => {
    if (closed) return;
    state.advanceTo(Date.now() - startMs);
    const next = state.nextChangeAt();
    const delay = next === undefined ? 1000 : Math.min(1000, Math.max(0, startMs + next - Date.now()));
    timer = setTimeout(tick, delay);
    timer.unref();
  };
  if (real) tick();

  const setTime = async (epochMs: number) => {
    if (real) throw new Error('setTime/advance need the manual clock (clock: "manual")');
    if (epochMs < manualNow) throw new Error(`time cannot go backwards (${epochMs} < ${manualNow})`);
    manualNow = epochMs;
    state.advanceTo(epochMs - startMs);
    // Let watch writes reach the sockets before the caller looks.
    await new Promise((resolve) => setImmediate(resolve));
  };

  const postpone = (laterMs: number) => {
    if (!real || now() >= startMs)
      throw new Error(`the scenario began at ${new Date(startMs).toISOString()}: too late to postpone`);
    if (laterMs < startMs) throw new Error(`postpone: ${laterMs} is before the current start ${startMs}`);
    startMs = laterMs;
    state.replacePending(buildTimeline({ model, startMs, dcgmHost: host, dcgmPort }));
    clearTimeout(timer);
    tick();
  };

  const base = (port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    k8sUrl: base(k8sPort),
    dcgmBaseUrl: base(dcgmPort),
    get startMs() {
      return startMs;
    },
    model,
    postpone,
    dcgmUrl: (node) => `${base(dcgmPort)}/metrics/${encodeURIComponent(node)}`,
    now,
    setTime,
    advance: (ms) => setTime(manualNow + ms),
    resourceVersion: () => state.resourceVersion,
    expireWatchHistory: ({ dropWatches = true } = {}) => {
      state.expire();
      if (dropWatches) k8s.dropWatches();
    },
    dropWatches: () => k8s.dropWatches(),
    restart: (restartOptions) => k8s.restart(restartOptions),
    sendBookmarks: () => k8s.sendBookmarks(),
    openWatches: () => k8s.openWatches,
    stallWatches: () => k8s.stallWatches(),
    resumeWatches: () => k8s.resumeWatches(),
    putObject: async (object) => {
      state.put(object);
      await new Promise((resolve) => setImmediate(resolve));
    },
    serveDcgmPage: (name, render) => {
      extras.pages.set(name, render);
      return `/pages/${encodeURIComponent(name)}`;
    },
    dcgmRequests: (path) => extras.requests.get(path) ?? 0,
    setPodLabels: async (namespace, name, labels) => {
      if (!state.setLabels('Pod', namespace, name, labels))
        throw new Error(`no pod ${namespace}/${name} to label`);
      await new Promise((resolve) => setImmediate(resolve));
    },
    podUid: (namespace, name) => podUid(scenario, namespace, name),
    gpuUuid: (node, index) => gpuUuid(scenario, node, index),
    close: async () => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      dcgm.closeAllConnections();
      await Promise.all([k8s.close(), new Promise<void>((resolve) => dcgm.close(() => resolve()))]);
    },
  };
}
