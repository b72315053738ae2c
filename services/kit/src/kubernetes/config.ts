import { env, requireWhen, schemas } from '../config/env.js';

/**
 * Where the Kubernetes API is: K8S_API_URL (a plain http(s) API such as the simulator's, no auth), else a
 * KUBECONFIG file, else in-cluster service-account credentials (or ~/.kube/config outside a cluster).
 */
export const kubernetesConfigSpec = {
  k8sApiUrl: env(
    'K8S_API_URL',
    schemas
      .optionalString()
      .refine(
        (value) => value === undefined || (URL.canParse(value) && /^https?:/.test(value)),
        'must be an http(s) URL',
      ),
    'Kubernetes API base URL without credentials (tests, kubectl proxy). Takes precedence over KUBECONFIG.',
  ),
  kubeconfig: env(
    'KUBECONFIG',
    schemas.optionalString(),
    'Path of a kubeconfig file; when neither this nor K8S_API_URL is set, in-cluster credentials are used.',
  ),
} as const;

/**
 * How the collectors keep their pod and node watches honest, in sampling intervals (both collectors alike: a
 * hung watch bounds what either can bill to an ended pod). `watchCacheOptions` turns them into the
 * `ClusterCache` options; `checkWatchFreshness` checks them at start-up.
 */
export const watchFreshnessConfigSpec = {
  watchRelistIntervals: env(
    'WATCH_RELIST_INTERVALS',
    schemas.int(4, 1),
    'Relist pods and nodes every this many sampling intervals: proves a quiet watch current (Kubernetes sends no bookmarks unasked) and repairs one that hangs silently; bounds what a hung watch can over-bill.',
  ),
  watchStaleIntervals: env(
    'WATCH_STALE_INTERVALS',
    schemas.int(6, 2),
    'With no watch event, bookmark or list for this many sampling intervals (or a failed watch or list) the watches count as stale (not ready; the runai-collector skips grid points and backfills them once fresh). Above WATCH_RELIST_INTERVALS.',
  ),
} as const;

export interface WatchFreshness {
  readonly watchRelistIntervals: number;
  readonly watchStaleIntervals: number;
  readonly samplingIntervalMs: number;
}

/** For a collector's `loadConfig`: stale must lie above relist, else a quiet healthy watch turns stale. */
export function checkWatchFreshness(config: WatchFreshness): void {
  requireWhen(
    config.watchStaleIntervals <= config.watchRelistIntervals,
    'WATCH_STALE_INTERVALS',
    `must be above WATCH_RELIST_INTERVALS (${config.watchRelistIntervals}): a quiet watch is proved fresh only by a relist`,
  );
}

export function watchCacheOptions(config: WatchFreshness): { relistMs: number; staleAfterMs: number } {
  return {
    relistMs: config.watchRelistIntervals * config.samplingIntervalMs,
    staleAfterMs: config.watchStaleIntervals * config.samplingIntervalMs,
  };
}
