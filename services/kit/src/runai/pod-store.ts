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
  /** Set for a deleted pod: the latest its bill may end (see PodStore.remove). */
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
   * A deleted pod stays visible until pruned. `nowMs` is when the collector learned it was gone (its
   * DELETED event, or a relist that no longer lists it), and its billed end is never later than that:
   * whatever ran after it cannot be vouched for. Nor later than its real finish when its last state
   * shows one (every container terminated, even with the phase still Running), nor than its
   * deletionTimestamp: for a graceful delete that is the grace deadline, often still in the future when
   * the removal is seen, so it only bounds the end and is never taken as a finish time by itself.
   */
  remove(pod: V1Pod, nowMs: number): void {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    const last = this.live.get(uid) ?? pod;
    const newer = resourceVersionOf(pod) >= resourceVersionOf(last) ? pod : last;
    this.live.delete(uid);
    const bounds = [nowMs, toMs(newer.metadata?.deletionTimestamp), containersFinishedMs(newer)];
    const deletedAtMs = Math.min(...bounds.filter((ms): ms is number => ms !== undefined));
    const span = runningSpanOf(newer);
    const endMs = Math.min(span?.endMs ?? deletedAtMs, deletedAtMs);
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

/**
 * The running span of a tracked pod: a deleted pod ended at the latest when it was deleted (a pod deleted
 * while still running, when the delete was seen), never after.
 */
export function trackedSpan(tracked: TrackedPod): RunningSpan | undefined {
  const span = runningSpanOf(tracked.pod);
  if (!span || tracked.deletedAtMs === undefined) return span;
  const endMs = span.endMs === null ? tracked.deletedAtMs : Math.min(span.endMs, tracked.deletedAtMs);
  return { startMs: span.startMs, endMs: Math.max(span.startMs, endMs) };
}

/** When every container of a pod has terminated, the last finish time; else undefined. */
function containersFinishedMs(pod: V1Pod): number | undefined {
  const statuses = pod.status?.containerStatuses ?? [];
  const finished = statuses.map((s) => toMs(s.state?.terminated?.finishedAt));
  if (finished.length === 0 || finished.some((ms) => ms === undefined)) return undefined;
  return Math.max(...(finished as number[]));
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
