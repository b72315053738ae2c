import type { V1Node } from '@kubernetes/client-node';
import { ErrorCodes, errorMessage, type PodAllocationSample } from '@gpu-meter/kit/contracts';
import {
  describeTracked,
  gridPointsOverlapping,
  isBillablePod,
  podSampleId,
  podSampleKey,
  sampleSpan,
  trackedSpan,
  type Attribution,
  type RunaiPod,
  type Span,
  type TrackedPod,
} from '@gpu-meter/kit/runai';
import type { ObjectDeadLetter } from '@gpu-meter/kit/kafka';

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

/** Why the pod model gave no billable pod: it threw, or it gave an amount no sample can carry. */
export type RejectionReason = 'model_error' | 'invalid_amount';

/** A pod that overlapped grid points but was not sampled at them, with what identifies it and why. */
export interface RejectedPod {
  readonly clusterId: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** The points it was not sampled at: the one planned, and any backfill (each point in one plan only). */
  readonly gridPointsMs: readonly number[];
  readonly reason: RejectionReason;
  readonly detail: string;
  /** The pod's previous rejection had this reason and detail: already reported to the operator. */
  readonly repeated: boolean;
}

export const POD_REJECTED_CODE = ErrorCodes.POD_REJECTED.code;

/**
 * The dead letter of a rejected pod: no sample exists to carry, so its value is JSON naming the pod, the
 * grid points it was not sampled at and why; keyed as its samples are (same partition). The error code
 * tells it from a sample's dead letter, whose value is the Avro sample.
 */
export function rejectedPodDeadLetter(pod: RejectedPod): ObjectDeadLetter {
  const { repeated: _, ...identity } = pod;
  return {
    key: podSampleKey({ clusterId: pod.clusterId, podUid: pod.uid }),
    value: Buffer.from(JSON.stringify({ kind: 'pod', ...identity })),
    code: POD_REJECTED_CODE,
    reason: pod.reason,
    message: `pod ${pod.namespace}/${pod.name} not sampled: ${pod.detail}`,
  };
}

/**
 * The amounts of a described pod that a sample cannot carry: each must be a finite non-negative number,
 * and the long fields (bytes) safe integers, or the Avro encoding throws and the bill is meaningless.
 */
export function invalidAmount(pod: RunaiPod): string | undefined {
  const amounts = {
    gpus: pod.gpus,
    gpuMemoryBytes: pod.gpuMemoryBytes,
    cpuCores: pod.cpuCores,
    memoryBytes: pod.memoryBytes,
  };
  for (const [name, value] of Object.entries(amounts)) {
    if (!Number.isFinite(value)) return `${name} ${value} is not finite`;
    if (value < 0) return `${name} ${value} is negative`;
    if (name.endsWith('Bytes') && !Number.isSafeInteger(value))
      return `${name} ${value} is not a safe integer`;
  }
  return undefined;
}

export interface Plan {
  readonly samples: PodAllocationSample[];
  /** Samples for grid points before the one being processed: restart backfill or late-seen pods. */
  readonly backfilled: number;
  /** Pods billed to the fallback subject in this plan (each once). */
  readonly unattributed: RunaiPod[];
  /** Pods sampled in this plan with tenant-written inputs not billed as written (each once). */
  readonly corrected: RunaiPod[];
  /** Pods the model rejected: not sampled at their due points, every other pod is. */
  readonly rejected: RejectedPod[];
}

/**
 * Decides which samples are due at grid point T. It remembers, per pod, the last grid point it produced;
 * a pod it has not seen before (every pod after a restart, or one whose events arrived late) gets every
 * point its running span overlaps back to T - backfillMaxMs. So nothing a visible pod ran is missed, and
 * no local state survives a restart: points re-published after one carry the same ids and are deduped
 * downstream. A pod the model rejects is reported instead for the points it was due, and those points
 * count as planned: each point of a pod is sampled or reported once, and a pod fixed later is sampled
 * from its next point. Pure apart from that memory.
 */
export class AllocationPlanner {
  private readonly lastPlanned = new Map<string, number>();
  /** Per pod, its latest rejection (reason and detail) while it stays rejected. */
  private readonly lastRejection = new Map<string, string>();

  constructor(
    private readonly intervalMs: number,
    private readonly backfillMaxMs: number,
    private readonly attribution: Attribution,
  ) {}

  plan(tracked: readonly TrackedPod[], nodes: ReadonlyMap<string, V1Node>, T: number): Plan {
    const samples: PodAllocationSample[] = [];
    const unattributed: RunaiPod[] = [];
    const corrected: RunaiPod[] = [];
    const rejected: RejectedPod[] = [];
    let backfilled = 0;
    const seen = new Set<string>();
    for (const entry of tracked) {
      if (!isBillablePod(entry.pod)) continue;
      const uid = entry.pod.metadata?.uid;
      const span = trackedSpan(entry);
      if (!uid || !span) continue;
      seen.add(uid);
      const last = this.lastPlanned.get(uid);
      // Backfill (a restart, points skipped while the watch was stale) reaches back backfillMaxMs at most.
      const from = Math.max(T - this.backfillMaxMs, last === undefined ? -Infinity : last + this.intervalMs);
      const points = gridPointsOverlapping(span, from, T, this.intervalMs);
      this.lastPlanned.set(uid, Math.max(T, last ?? T));
      if (points.length === 0) continue;
      const pod = this.describe(entry, nodes);
      if (!('uid' in pod)) {
        rejected.push(this.rejection(entry, uid, points, pod));
        continue;
      }
      this.lastRejection.delete(uid);
      for (const t of points) {
        samples.push(allocationSample(pod, t, sampleSpan(t, this.intervalMs, span)!));
        if (t < T) backfilled += 1;
      }
      if (!pod.attributed) unattributed.push(pod);
      if (pod.inputIssues.length > 0) corrected.push(pod);
    }
    for (const uid of this.lastPlanned.keys()) if (!seen.has(uid)) this.lastPlanned.delete(uid);
    for (const uid of this.lastRejection.keys()) if (!seen.has(uid)) this.lastRejection.delete(uid);
    return { samples, backfilled, unattributed, corrected, rejected };
  }

  /** The billable pod, or why the model gives none: one pod's bad object must not stop the others. */
  private describe(
    entry: TrackedPod,
    nodes: ReadonlyMap<string, V1Node>,
  ): RunaiPod | { reason: RejectionReason; detail: string } {
    let pod: RunaiPod;
    try {
      pod = describeTracked(entry, nodes, this.attribution);
    } catch (error) {
      return { reason: 'model_error', detail: errorMessage(error) };
    }
    const invalid = invalidAmount(pod);
    return invalid === undefined ? pod : { reason: 'invalid_amount', detail: invalid };
  }

  private rejection(
    entry: TrackedPod,
    uid: string,
    gridPointsMs: number[],
    why: { reason: RejectionReason; detail: string },
  ): RejectedPod {
    const metadata = entry.pod.metadata ?? {};
    const key = `${why.reason}\u0000${why.detail}`;
    const repeated = this.lastRejection.get(uid) === key;
    this.lastRejection.set(uid, key);
    return {
      clusterId: this.attribution.clusterId,
      namespace: metadata.namespace ?? '',
      name: metadata.name ?? '',
      uid,
      gridPointsMs,
      ...why,
      repeated,
    };
  }
}
