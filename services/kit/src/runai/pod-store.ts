import type { V1Node, V1Pod } from '@kubernetes/client-node';
import {
  describeRunaiPod,
  runningSpanOf,
  toMs,
  type Attribution,
  type RunaiPod,
  type RunningSpan,
} from './pod-model.js';

/**
 * The pods a collector bills from: the informer's live pods plus pods deleted recently, kept with their
 * last state so that the interval they ended in is still billed (and, for the bandwidth collector, so a
 * departed sharer still takes its part of a shared GPU). Pure: fed by informer events, pruned by time.
 */
export interface TrackedPod {
  readonly pod: V1Pod;
  /** Set for a deleted pod whose last state had no end: it ended when it was deleted. */
  readonly deletedAtMs?: number;
}

export class PodStore {
  private readonly live = new Map<string, V1Pod>();
  private readonly departed = new Map<string, { pod: V1Pod; deletedAtMs: number; endMs: number }>();

  upsert(pod: V1Pod): void {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    this.departed.delete(uid);
    this.live.set(uid, pod);
  }

  /**
   * A deleted pod stays visible until pruned. Its end is the finish time in its last state, else the
   * deletionTimestamp, else `nowMs` (when the delete was seen: a relist after 410 reports pods deleted
   * during the gap this way).
   */
  remove(pod: V1Pod, nowMs: number): void {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    const last = this.live.get(uid) ?? pod;
    const newer = resourceVersionOf(pod) >= resourceVersionOf(last) ? pod : last;
    this.live.delete(uid);
    const deletedAtMs = toMs(newer.metadata?.deletionTimestamp) ?? nowMs;
    const span = runningSpanOf(newer);
    const endMs = span?.endMs ?? deletedAtMs;
    this.departed.set(uid, { pod: newer, deletedAtMs, endMs });
  }

  /** Forgets departed pods that ended before `beforeMs`. */
  prune(beforeMs: number): void {
    for (const [uid, entry] of this.departed) if (entry.endMs < beforeMs) this.departed.delete(uid);
  }

  get(uid: string): TrackedPod | undefined {
    const pod = this.live.get(uid);
    if (pod) return { pod };
    const gone = this.departed.get(uid);
    return gone && { pod: gone.pod, deletedAtMs: gone.deletedAtMs };
  }

  /** Live and departed pods, in a stable order (by uid). */
  all(): TrackedPod[] {
    const tracked: TrackedPod[] = [...this.live.values()].map((pod) => ({ pod }));
    for (const { pod, deletedAtMs } of this.departed.values()) tracked.push({ pod, deletedAtMs });
    return tracked.sort((a, b) => compare(a.pod.metadata?.uid ?? '', b.pod.metadata?.uid ?? ''));
  }

  get size(): { live: number; departed: number } {
    return { live: this.live.size, departed: this.departed.size };
  }
}

/** The running span of a tracked pod: a pod deleted while still running ended when it was deleted. */
export function trackedSpan(tracked: TrackedPod): RunningSpan | undefined {
  const span = runningSpanOf(tracked.pod);
  if (!span || span.endMs !== null || tracked.deletedAtMs === undefined) return span;
  return { startMs: span.startMs, endMs: Math.max(span.startMs, tracked.deletedAtMs) };
}

export function describeTracked(
  tracked: TrackedPod,
  nodes: ReadonlyMap<string, V1Node>,
  attribution: Attribution,
): RunaiPod {
  const described = describeRunaiPod(tracked.pod, nodes.get(tracked.pod.spec?.nodeName ?? ''), attribution);
  return { ...described, span: trackedSpan(tracked) };
}

function resourceVersionOf(pod: V1Pod): number {
  const version = Number(pod.metadata?.resourceVersion);
  return Number.isFinite(version) ? version : -1;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
