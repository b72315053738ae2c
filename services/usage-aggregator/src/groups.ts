import {
  deterministicId,
  USAGE_QUANTITIES,
  type UsageEvent,
  type UsageQuantity,
} from '@gpu-meter/kit/contracts';
import type { GroupDims, Sample } from './samples.js';

/** Key of one group inside one window: the dimensions of docs/DESIGN.md §4 (the window is the outer key). */
export function groupKey(d: GroupDims): string {
  return JSON.stringify([d.subject, d.clusterId, d.project, d.department, d.workloadType, d.gpuType]);
}

/**
 * Same group: every dimension equal. The hot path finds a record's group among its subject's few groups
 * with this instead of building a key string per record.
 */
export function sameGroup(a: GroupDims, b: GroupDims): boolean {
  return (
    a.subject === b.subject &&
    a.clusterId === b.clusterId &&
    a.project === b.project &&
    a.department === b.department &&
    a.workloadType === b.workloadType &&
    a.gpuType === b.gpuType
  );
}

/** Just the dimensions (a sample's `dims` may be a wider decoded record): what a group keeps and emits. */
export function dimsOf(d: GroupDims): GroupDims {
  return {
    subject: d.subject,
    clusterId: d.clusterId,
    project: d.project,
    department: d.department,
    workloadType: d.workloadType,
    gpuType: d.gpuType,
  };
}

/**
 * Same group, window and task → same id, in every run, replay and replica. The task (raw partition number)
 * is part of the id: raw samples are keyed by the pod or GPU they describe, so one group's samples spread
 * over several tasks, and each task emits its own part of the group's window (DESIGN.md, "Tasks").
 */
export function usageEventId(d: GroupDims, windowStartMs: number, windowEndMs: number, task: number): string {
  return deterministicId(
    'usage-event',
    task,
    d.subject,
    windowStartMs,
    windowEndMs,
    d.clusterId,
    d.project,
    d.department,
    d.workloadType,
    d.gpuType,
  );
}

/** A correction is one late sample's share of one closed window: its id adds the sample id. */
export function correctionEventId(
  d: GroupDims,
  windowStartMs: number,
  windowEndMs: number,
  task: number,
  sampleId: string,
) {
  return deterministicId('usage-correction', usageEventId(d, windowStartMs, windowEndMs, task), sampleId);
}

/**
 * Running totals of one group in one window, in level·milliseconds: with integer levels the sums stay
 * exact integers, and the one division by 1000 happens at emission.
 */
export class GroupAccumulator {
  private readonly levelMs: Record<UsageQuantity, number> = Object.fromEntries(
    USAGE_QUANTITIES.map((q) => [q, 0]),
  ) as Record<UsageQuantity, number>;
  sampleCount = 0;
  readonly dims: GroupDims;

  constructor(dims: GroupDims) {
    this.dims = dimsOf(dims);
  }

  add(sample: Sample, overlapMs: number): void {
    const levels = sample.levels;
    // for-in, not Object.entries: no array per call on the hot path; same keys in the same order.
    for (const quantity in levels) {
      this.levelMs[quantity as UsageQuantity] += levels[quantity as UsageQuantity]! * overlapMs;
    }
    this.sampleCount += 1;
  }

  toEvent(windowStartMs: number, windowEndMs: number, id: string) {
    const event: UsageEvent = {
      id,
      ...this.dims,
      windowStartMs,
      windowEndMs,
      ...(Object.fromEntries(USAGE_QUANTITIES.map((q) => [q, this.levelMs[q] / 1000])) as Record<
        UsageQuantity,
        number
      >),
      sampleCount: this.sampleCount,
      correction: false,
    };
    return event;
  }
}

export function correctionEvent(
  sample: Sample,
  windowStartMs: number,
  windowEndMs: number,
  task: number,
  overlapMs: number,
) {
  const acc = new GroupAccumulator(sample.dims);
  acc.add(sample, overlapMs);
  const id = correctionEventId(sample.dims, windowStartMs, windowEndMs, task, sample.id);
  return { ...acc.toEvent(windowStartMs, windowEndMs, id), correction: true };
}
