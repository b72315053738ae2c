import { deterministicId, USAGE_QUANTITIES, type UsageEvent, type UsageQuantity } from '@gpu-meter/kit';
import type { GroupDims, Sample } from './samples.js';

/** Key of one group inside one window: the dimensions of DESIGN.md §4 (the window is the outer key). */
export function groupKey(d: GroupDims): string {
  return JSON.stringify([d.subject, d.clusterId, d.project, d.department, d.workloadType, d.gpuType]);
}

/**
 * The hot-path map key of a group (one per record): cheaper than `groupKey`'s JSON. Fields joined by NUL
 * split back uniquely when no field holds a NUL; otherwise NUL + the JSON key, which holds exactly one NUL
 * (JSON escapes the rest) where a plain key holds five, so the two kinds never meet. Event order still
 * sorts by `groupKey`.
 */
export function groupMapKey(d: GroupDims): string {
  const { subject, clusterId, project, department, workloadType, gpuType } = d;
  if (
    unsafe(subject) ||
    unsafe(clusterId) ||
    unsafe(project) ||
    unsafe(department) ||
    unsafe(workloadType) ||
    unsafe(gpuType)
  )
    return `\u0000${groupKey(d)}`;
  return `${subject}\u0000${clusterId}\u0000${project}\u0000${department}\u0000${workloadType}\u0000${gpuType}`;
}

function unsafe(field: unknown): boolean {
  return typeof field !== 'string' || field.includes('\u0000');
}

/** Same group and window → same id, in every run, replay and replica. */
export function usageEventId(d: GroupDims, windowStartMs: number, windowEndMs: number): string {
  return deterministicId(
    'usage-event',
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
  sampleId: string,
) {
  return deterministicId('usage-correction', usageEventId(d, windowStartMs, windowEndMs), sampleId);
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

  constructor(readonly dims: GroupDims) {}

  add(sample: Sample, overlapMs: number): void {
    const levels = sample.levels;
    // for-in, not Object.entries: no array per call on the hot path; same keys in the same order.
    for (const quantity in levels) {
      this.levelMs[quantity as UsageQuantity] += levels[quantity as UsageQuantity]! * overlapMs;
    }
    this.sampleCount += 1;
  }

  toEvent(
    windowStartMs: number,
    windowEndMs: number,
    id = usageEventId(this.dims, windowStartMs, windowEndMs),
  ) {
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
  overlapMs: number,
) {
  const acc = new GroupAccumulator(sample.dims);
  acc.add(sample, overlapMs);
  const id = correctionEventId(sample.dims, windowStartMs, windowEndMs, sample.id);
  return { ...acc.toEvent(windowStartMs, windowEndMs, id), correction: true };
}
