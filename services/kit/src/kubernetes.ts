import {
  CoreV1Api,
  KubeConfig,
  makeInformer,
  type Informer,
  type KubernetesObject,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import { backoffCeiling, RECONNECT_BACKOFF } from './backoff.js';
import type { ConfigOf } from './config.js';
import { errorMessage } from './errors.js';
import type { kubernetesConfigSpec } from './common-config.js';
import type { Logger } from './logger.js';
import { PodStore } from './runai/pod-store.js';

/**
 * Kubernetes I/O shared by the collectors, kept out of the kit's main entry (import from
 * '@gpu-meter/kit/kubernetes') so services that do not talk to Kubernetes do not load the client.
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
  /** Every list (the first and each relist after 410 Gone or an error). */
  onList?(kind: string): void;
  /** A watch or list failed; the informer restarts after a back-off. */
  onError?(kind: string, error: unknown): void;
}

/**
 * An informer (list, then watch from the list's resourceVersion) that never gives up. The client relists
 * by itself after 410 Gone (HTTP 410 or an ERROR event with code 410) and re-watches when the server
 * closes a watch; on any other error it stops and reports, so we restart it after a capped back-off.
 */
export class ResilientInformer<T extends KubernetesObject> {
  private readonly informer: Informer<T>;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private syncedResolve!: () => void;
  readonly synced: Promise<void> = new Promise((resolve) => (this.syncedResolve = resolve));

  constructor(
    kc: KubeConfig,
    readonly kind: string,
    path: string,
    list: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>,
    events: InformerEvents<T>,
    private readonly logger: Logger,
    private readonly hooks: InformerHooks = {},
    labelSelector?: string,
  ) {
    const listAndCount = async () => {
      const result = await list();
      this.hooks.onList?.(kind);
      this.failures = 0;
      // The informer adds the listed items right after this resolves; report synced once they are in.
      setImmediate(() => this.syncedResolve());
      return result as never;
    };
    this.informer = makeInformer(kc, path, listAndCount, labelSelector) as Informer<T>;
    if (events.add) this.informer.on('add', events.add);
    if (events.update) this.informer.on('update', events.update);
    if (events.delete) this.informer.on('delete', events.delete);
    this.informer.on('error', (error: unknown) => this.restartAfterError(error));
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.informer.start();
  }

  private restartAfterError(error: unknown): void {
    // Stopping aborts the open watch, which the client reports as an error: not one.
    if (this.stopped) return;
    this.hooks.onError?.(this.kind, error);
    this.failures += 1;
    const delayMs = backoffCeiling(this.failures - 1, RECONNECT_BACKOFF);
    this.logger.warn(
      { kind: this.kind, err: errorMessage(error), retryInMs: delayMs },
      'watch failed; restarting informer',
    );
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (!this.stopped) this.informer.start().catch((cause: unknown) => this.restartAfterError(cause));
    }, delayMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    await this.informer.stop();
  }
}

/** Pods of the whole cluster (optionally filtered by a label selector). */
export function podInformer(
  kc: KubeConfig,
  events: InformerEvents<V1Pod>,
  logger: Logger,
  hooks: InformerHooks = {},
  labelSelector?: string,
): ResilientInformer<V1Pod> {
  const api = kc.makeApiClient(CoreV1Api);
  return new ResilientInformer<V1Pod>(
    kc,
    'pods',
    '/api/v1/pods',
    () => api.listPodForAllNamespaces(labelSelector ? { labelSelector } : {}),
    events,
    logger,
    hooks,
    labelSelector,
  );
}

export function nodeInformer(
  kc: KubeConfig,
  events: InformerEvents<V1Node>,
  logger: Logger,
  hooks: InformerHooks = {},
): ResilientInformer<V1Node> {
  const api = kc.makeApiClient(CoreV1Api);
  return new ResilientInformer<V1Node>(
    kc,
    'nodes',
    '/api/v1/nodes',
    () => api.listNode(),
    events,
    logger,
    hooks,
  );
}

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

  constructor(kc: KubeConfig, logger: Logger, hooks: InformerHooks = {}) {
    this.podWatch = podInformer(
      kc,
      {
        add: (pod) => this.pods.upsert(pod),
        update: (pod) => this.pods.upsert(pod),
        delete: (pod) => this.pods.remove(pod, Date.now()),
      },
      logger,
      hooks,
    );
    const setNode = (node: V1Node) => void this.nodes.set(node.metadata?.name ?? '', node);
    this.nodeWatch = nodeInformer(
      kc,
      { add: setNode, update: setNode, delete: (node) => void this.nodes.delete(node.metadata?.name ?? '') },
      logger,
      hooks,
    );
  }

  /** True once both first lists have arrived. */
  get synced(): boolean {
    return this.listed;
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
