import {
  CoreV1Api,
  KubeConfig,
  Watch,
  type KubernetesObject,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import { backoffCeiling, RECONNECT_BACKOFF } from '../runtime/backoff.js';
import type { ConfigOf } from '../config/env.js';
import { errorMessage } from '../contracts/errors.js';
import { watchCacheOptions, type kubernetesConfigSpec, type WatchFreshness } from './config.js';
import type { Logger } from '../runtime/logger.js';
import { PodStore } from '../runai/pod-store.js';

/**
 * Kubernetes I/O shared by the collectors, behind its own entry point ('@gpu-meter/kit/kubernetes') so
 * services that do not talk to Kubernetes do not load the client.
 */
export type KubernetesSettings = ConfigOf<typeof kubernetesConfigSpec>;

export function createKubeConfig(settings: KubernetesSettings): KubeConfig {
  const kc = new KubeConfig();
  if (settings.k8sApiUrl) {
    const server = settings.k8sApiUrl.replace(/\/$/, '');
    // The client refuses plain http unless TLS verification is off; https keeps verification on.
    kc.loadFromClusterAndUser(
      { name: 'api', server, skipTLSVerify: server.startsWith('http:') },
      { name: 'anonymous' },
    );
  } else if (settings.kubeconfig) {
    kc.loadFromFile(settings.kubeconfig);
  } else {
    kc.loadFromDefault();
  }
  return kc;
}

export interface InformerEvents<T> {
  add?(object: T): void;
  update?(object: T): void;
  delete?(object: T): void;
}

export interface InformerHooks {
  /** Every list (the first, each periodic relist, and each relist after 410 Gone or a failed list). */
  onList?(kind: string): void;
  /** A watch or list failed; the informer resumes (or relists) after a back-off. */
  onError?(kind: string, error: unknown): void;
}

export interface InformerOptions {
  readonly labelSelector?: string;
  /**
   * Relist this often (0: never). A relist proves the cache current even on a quiet watch (a real server
   * sends bookmarks only now and then), and repairs a watch that hangs without an error.
   */
  readonly relistMs?: number;
  /** A list taking longer than this counts as failed (a hung list would otherwise stall every relist). */
  readonly listTimeoutMs?: number;
}

/** Whether an informer's cache can be vouched for now, and since when it has had no proof. */
export interface WatchHealth {
  readonly fresh: boolean;
  /** When the cache was last proved current: a list, or any watch event (bookmarks included). */
  readonly lastEvidenceMs: number | undefined;
  readonly reason?: string;
}

interface ListResult<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

/**
 * An informer (list, then watch from the list's resourceVersion) that never gives up: it resumes a
 * watch the server ended, resumes from its last resourceVersion after a failed watch (the missed events,
 * final statuses included, are replayed), relists after 410 Gone, after a failed list and every
 * `relistMs`. Objects are keyed by uid, so a pod recreated under the same name is a delete and an add.
 * Its own loop rather than the client's informer: that one cannot be told to relist, never asks for
 * bookmarks and does not say whether its watch is up.
 */
export class ResilientInformer<T extends KubernetesObject> {
  private readonly watcher: Watch;
  private readonly objects = new Map<string, T>();
  private resourceVersion = '';
  /** Bumped by each list or watch attempt; callbacks of an older attempt are ignored. */
  private generation = 0;
  private watchAbort: AbortController | undefined;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private relistTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastEvidenceMs: number | undefined;
  /** Why the cache is not current right now (no list yet, a failed watch or list), else undefined. */
  private down: string | undefined = 'not listed yet';
  private syncedResolve!: () => void;
  readonly synced: Promise<void> = new Promise((resolve) => (this.syncedResolve = resolve));

  constructor(
    kc: KubeConfig,
    readonly kind: string,
    private readonly path: string,
    private readonly list: () => Promise<ListResult<T>>,
    private readonly events: InformerEvents<T>,
    private readonly logger: Logger,
    private readonly hooks: InformerHooks = {},
    private readonly options: InformerOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.watcher = new Watch(kc);
  }

  /** Resolves after the first attempt (listed and watching, or failed and retrying). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.cycle(true);
  }

  /**
   * Fresh when listed, the watch not known broken, and the last proof within `staleAfterMs`. A quiet
   * healthy watch stays fresh through the periodic relists, so `staleAfterMs` must exceed `relistMs`.
   */
  health(staleAfterMs: number): WatchHealth {
    const lastEvidenceMs = this.lastEvidenceMs;
    if (this.down !== undefined) return { fresh: false, lastEvidenceMs, reason: this.down };
    const age = this.now() - (lastEvidenceMs ?? -Infinity);
    if (age > staleAfterMs) {
      return {
        fresh: false,
        lastEvidenceMs,
        reason: `no ${this.kind} watch event, bookmark or list for ${age} ms`,
      };
    }
    return { fresh: true, lastEvidenceMs };
  }

  /** Relists now (and re-watches from the new list). */
  relist(): Promise<void> {
    return this.cycle(true);
  }

  private async cycle(relist: boolean): Promise<void> {
    if (this.stopped) return;
    const generation = ++this.generation;
    this.abortWatch();
    clearTimeout(this.restartTimer);
    try {
      if (relist || !this.resourceVersion) {
        const result = await this.timedList();
        if (generation !== this.generation || this.stopped) return;
        this.applyList(result.items ?? []);
        this.resourceVersion = result.metadata?.resourceVersion ?? '';
        this.failures = 0;
        this.down = undefined;
        this.lastEvidenceMs = this.now();
        this.hooks.onList?.(this.kind);
        this.syncedResolve();
        this.scheduleRelist();
      }
      const query: Record<string, string | boolean> = {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
      };
      if (this.options.labelSelector) query.labelSelector = this.options.labelSelector;
      let ended = false;
      const controller = await this.watcher.watch(
        this.path,
        query,
        (type: string, object: T) => {
          if (generation === this.generation) this.onEvent(type, object);
        },
        (error: unknown) => {
          ended = true;
          if (generation === this.generation) this.onWatchEnd(error);
        },
      );
      if (generation !== this.generation || this.stopped) {
        controller.abort();
        return;
      }
      this.watchAbort = controller;
      // The watch answered 200: it replays what happened since resourceVersion, so the cache is current.
      if (!ended) {
        this.down = undefined;
        this.lastEvidenceMs = this.now();
      }
    } catch (error) {
      if (generation === this.generation && !this.stopped) this.failed(error, true);
    }
  }

  private timedList(): Promise<ListResult<T>> {
    const timeoutMs = this.options.listTimeoutMs;
    if (!timeoutMs) return this.list();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.kind} list took over ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([this.list(), timeout]).finally(() => clearTimeout(timer));
  }

  private applyList(items: T[]): void {
    const listed = new Map(items.map((item) => [keyOf(item), item]));
    for (const [key, object] of this.objects) {
      if (listed.has(key)) continue;
      this.objects.delete(key);
      this.events.delete?.(object);
    }
    for (const [key, item] of listed) this.put(key, item);
  }

  private put(key: string, object: T): void {
    const known = this.objects.get(key);
    this.objects.set(key, object);
    if (!known) this.events.add?.(object);
    else if (known.metadata?.resourceVersion !== object.metadata?.resourceVersion)
      this.events.update?.(object);
  }

  private onEvent(type: string, object: T): void {
    this.lastEvidenceMs = this.now();
    if (type === 'ERROR') {
      // 410 Expired: the server closes the watch next; relist then.
      if ((object as { code?: number }).code === 410) this.resourceVersion = '';
      return;
    }
    if (type === 'ADDED' || type === 'MODIFIED') this.put(keyOf(object), object);
    else if (type === 'DELETED') {
      const key = keyOf(object);
      if (this.objects.delete(key)) this.events.delete?.(object);
    }
    const version = object.metadata?.resourceVersion;
    if (version) this.resourceVersion = version;
  }

  private onWatchEnd(error: unknown): void {
    if (this.stopped) return;
    const code = (error as { statusCode?: number; code?: number } | null)?.statusCode;
    if (error && code !== 410) {
      this.failed(error, false);
      return;
    }
    if (code === 410) this.resourceVersion = '';
    // Ended by the server (its timeout, a restart) or expired: resume, relisting when expired.
    void this.cycle(!this.resourceVersion);
  }

  private failed(error: unknown, listing: boolean): void {
    this.abortWatch();
    this.down = `${this.kind} ${listing ? 'list' : 'watch'} failed: ${errorMessage(error)}`;
    this.hooks.onError?.(this.kind, error);
    this.failures += 1;
    const delayMs = backoffCeiling(this.failures - 1, RECONNECT_BACKOFF);
    this.logger.warn(
      { kind: this.kind, err: errorMessage(error), retryInMs: delayMs },
      listing ? 'list failed; relisting' : 'watch failed; resuming it',
    );
    clearTimeout(this.restartTimer);
    // A failed list relists; a failed watch resumes from its resourceVersion (410 then relists).
    this.restartTimer = setTimeout(() => void this.cycle(listing), delayMs);
  }

  private scheduleRelist(): void {
    clearTimeout(this.relistTimer);
    const relistMs = this.options.relistMs ?? 0;
    if (relistMs > 0) this.relistTimer = setTimeout(() => void this.cycle(true), relistMs);
  }

  private abortWatch(): void {
    this.watchAbort?.abort();
    this.watchAbort = undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation += 1;
    clearTimeout(this.restartTimer);
    clearTimeout(this.relistTimer);
    this.abortWatch();
  }
}

function keyOf(object: KubernetesObject): string {
  const metadata = object.metadata ?? {};
  return metadata.uid || `${metadata.namespace ?? ''}/${metadata.name ?? ''}`;
}

/**
 * An informer maker for one kind of the core API: makes its client and a ResilientInformer that lists
 * through `list` (given the informer's options) and watches `path`.
 */
function coreInformer<T extends KubernetesObject>(
  kind: string,
  path: string,
  list: (api: CoreV1Api, options: InformerOptions) => Promise<ListResult<T>>,
) {
  return (
    kc: KubeConfig,
    events: InformerEvents<T>,
    logger: Logger,
    hooks: InformerHooks = {},
    options: InformerOptions = {},
  ): ResilientInformer<T> => {
    const api = kc.makeApiClient(CoreV1Api);
    return new ResilientInformer<T>(kc, kind, path, () => list(api, options), events, logger, hooks, options);
  };
}

/** Pods of the whole cluster (optionally filtered by a label selector). */
export const podInformer = coreInformer<V1Pod>('pods', '/api/v1/pods', (api, { labelSelector }) =>
  api.listPodForAllNamespaces(labelSelector ? { labelSelector } : {}),
);

export const nodeInformer = coreInformer<V1Node>('nodes', '/api/v1/nodes', (api) => api.listNode());

/** The shortest time a list may take before it counts as hung (the default intervals give 30 s too). */
const MIN_LIST_TIMEOUT_MS = 30_000;

/** How often a ClusterCache relists, and how long without proof its cache stays fresh. */
export interface ClusterCacheOptions {
  readonly relistMs: number;
  readonly staleAfterMs: number;
}

/** Without options: a relist a minute, stale after two minutes without proof. */
export const DEFAULT_CLUSTER_CACHE_OPTIONS: ClusterCacheOptions = { relistMs: 60_000, staleAfterMs: 120_000 };

/**
 * What both collectors watch: every pod (kept in a PodStore, so a pod that ended is still known for the
 * interval it ended in) and every node (for GPU types), each through a resilient informer.
 */
export class ClusterCache {
  readonly pods = new PodStore();
  readonly nodes = new Map<string, V1Node>();
  private readonly podWatch: ResilientInformer<V1Pod>;
  private readonly nodeWatch: ResilientInformer<V1Node>;
  private listed = false;

  constructor(
    kc: KubeConfig,
    logger: Logger,
    hooks: InformerHooks = {},
    private readonly options: ClusterCacheOptions = DEFAULT_CLUSTER_CACHE_OPTIONS,
  ) {
    // The timeout only repairs a hung list. A slow one (a large cluster, a loaded API server) is waited
    // for: aborting it and starting another as slow never lists at all, and a pod created and removed
    // meanwhile is never seen. Meanwhile the cache turns stale by the age of its last proof, as it must.
    const informerOptions = {
      relistMs: options.relistMs,
      listTimeoutMs: Math.max(MIN_LIST_TIMEOUT_MS, options.staleAfterMs - options.relistMs),
    };
    this.podWatch = podInformer(
      kc,
      {
        add: (pod) => this.pods.upsert(pod),
        update: (pod) => this.pods.upsert(pod),
        // Now is when the removal was learned (its DELETED event or a relist): the latest its bill ends.
        delete: (pod) => this.pods.remove(pod, Date.now()),
      },
      logger,
      hooks,
      informerOptions,
    );
    const setNode = (node: V1Node) => void this.nodes.set(node.metadata?.name ?? '', node);
    this.nodeWatch = nodeInformer(
      kc,
      { add: setNode, update: setNode, delete: (node) => void this.nodes.delete(node.metadata?.name ?? '') },
      logger,
      hooks,
      informerOptions,
    );
  }

  /** True once both first lists have arrived. */
  get synced(): boolean {
    return this.listed;
  }

  /** Fresh when both watches are: the pods' health first (what is billed), else the nodes'. */
  health(): WatchHealth {
    const pods = this.podWatch.health(this.options.staleAfterMs);
    if (!pods.fresh) return pods;
    const nodes = this.nodeWatch.health(this.options.staleAfterMs);
    return nodes.fresh ? pods : nodes;
  }

  /** Starts both watches and resolves once both have listed everything. */
  async start(): Promise<void> {
    await Promise.all([this.nodeWatch.start(), this.podWatch.start()]);
    await Promise.all([this.nodeWatch.synced, this.podWatch.synced]);
    this.listed = true;
  }

  async stop(): Promise<void> {
    await Promise.all([this.podWatch.stop(), this.nodeWatch.stop()]);
  }
}

/** Counters a collector keeps of its watches, per kind (`pods`, `nodes`). */
export interface WatchCounters {
  readonly lists: { inc(labels: { kind: string }): void };
  readonly watchErrors: { inc(labels: { kind: string }): void };
}

/** A collector's cache: lists and watch failures counted, relist and staleness from WATCH_*_INTERVALS. */
export function collectorClusterCache(
  kc: KubeConfig,
  logger: Logger,
  counters: WatchCounters,
  freshness: WatchFreshness,
): ClusterCache {
  return new ClusterCache(
    kc,
    logger,
    {
      onList: (kind) => counters.lists.inc({ kind }),
      onError: (kind) => counters.watchErrors.inc({ kind }),
    },
    watchCacheOptions(freshness),
  );
}
