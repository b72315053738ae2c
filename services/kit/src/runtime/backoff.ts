/**
 * Capped exponential backoff with jitter: attempt n waits between half and all of
 * min(maxMs, initialMs · 2^n). Half is kept fixed so a retry never fires almost at once (which would
 * hammer a sink that is down), the other half is random so replicas do not retry in lock-step.
 */
export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 200, maxMs: 30_000 });

/** Start-up and reconnect retries (schema registry, Kubernetes watches): 250 ms doubling up to 10 s. */
export const RECONNECT_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 250, maxMs: 10_000 });

/** min(maxMs, initialMs · 2^attempt): attempt n's longest wait, and its whole wait where no jitter is used. */
export function backoffCeiling(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  // 2^n overflows to Infinity for large n; min() still caps it.
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, attempt));
}

export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const ceiling = backoffCeiling(attempt, policy);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Resolves after `ms`, or at once when `signal` aborts (shutdown must not wait out a long backoff). */
export function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
