import type { V1Node } from '@kubernetes/client-node';
import {
  describeTracked,
  gridPointsOverlapping,
  isBillablePod,
  podSampleId,
  sampleSpan,
  type Attribution,
  type PodAllocationSample,
  type RunaiPod,
  type Span,
  type TrackedPod,
} from '@gpu-meter/kit';

export function allocationSample(pod: RunaiPod, t: number, span: Span): PodAllocationSample {
  return {
    id: podSampleId(pod.clusterId, pod.uid, t),
    clusterId: pod.clusterId,
    observedAtMs: t,
    spanStartMs: span.startMs,
    spanEndMs: span.endMs,
    podUid: pod.uid,
    podName: pod.name,
    namespace: pod.namespace,
    nodeName: pod.nodeName,
    subject: pod.subject,
    project: pod.project,
    department: pod.department,
    queue: pod.queue,
    workloadType: pod.workloadType,
    user: pod.user,
    workloadId: pod.workloadId,
    gpuType: pod.gpuType,
    migProfile: pod.migProfile,
    gpus: pod.gpus,
    gpuMemoryBytes: pod.gpuMemoryBytes,
    cpuCores: pod.cpuCores,
    memoryBytes: pod.memoryBytes,
  };
}

export interface Plan {
  readonly samples: PodAllocationSample[];
  /** Samples for grid points before the one being processed: restart backfill or late-seen pods. */
  readonly backfilled: number;
  /** Pods billed to the fallback subject in this plan (each once). */
  readonly unattributed: RunaiPod[];
  /** Pods sampled in this plan with tenant-written inputs not billed as written (each once). */
  readonly corrected: RunaiPod[];
}

/**
 * Decides which samples are due at grid point T. It remembers, per pod, the last grid point it produced;
 * a pod it has not seen before (every pod after a restart, or one whose events arrived late) gets every
 * point its running span overlaps back to T - backfillMaxMs. So nothing a visible pod ran is missed, and
 * no local state survives a restart: points re-published after one carry the same ids and are deduped
 * downstream. Pure apart from that memory.
 */
export class AllocationPlanner {
  private readonly lastPlanned = new Map<string, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly backfillMaxMs: number,
    private readonly attribution: Attribution,
  ) {}

  plan(tracked: readonly TrackedPod[], nodes: ReadonlyMap<string, V1Node>, T: number): Plan {
    const samples: PodAllocationSample[] = [];
    const unattributed: RunaiPod[] = [];
    const corrected: RunaiPod[] = [];
    let backfilled = 0;
    const seen = new Set<string>();
    for (const entry of tracked) {
      if (!isBillablePod(entry.pod)) continue;
      const pod = describeTracked(entry, nodes, this.attribution);
      if (!pod.uid || !pod.span) continue;
      seen.add(pod.uid);
      const last = this.lastPlanned.get(pod.uid);
      // Backfill (a restart, points skipped while the watch was stale) reaches back backfillMaxMs at most.
      const from = Math.max(T - this.backfillMaxMs, last === undefined ? -Infinity : last + this.intervalMs);
      const points = gridPointsOverlapping(pod.span, from, T, this.intervalMs);
      for (const t of points) {
        samples.push(allocationSample(pod, t, sampleSpan(t, this.intervalMs, pod.span)!));
        if (t < T) backfilled += 1;
      }
      if (points.length > 0 && !pod.attributed) unattributed.push(pod);
      if (points.length > 0 && pod.inputIssues.length > 0) corrected.push(pod);
      this.lastPlanned.set(pod.uid, Math.max(T, last ?? T));
    }
    for (const uid of this.lastPlanned.keys()) if (!seen.has(uid)) this.lastPlanned.delete(uid);
    return { samples, backfilled, unattributed, corrected };
  }
}
