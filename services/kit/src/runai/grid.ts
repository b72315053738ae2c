import { deterministicId } from '../contracts/ids.js';
import type { RunningSpan } from './pod-model.js';

/**
 * The sampling grid (docs/DESIGN.md §3): points at multiples of the interval since the epoch; the sample at t
 * covers [t - interval, t), clipped to the running span. All integer milliseconds, so sums are exact.
 */
export const POD_ALLOCATION_KIND = 'pod-allocation';
export const GPU_BANDWIDTH_KIND = 'gpu-bandwidth';
export const UNALLOCATED_SUBJECT = 'unallocated';

export interface Span {
  readonly startMs: number;
  readonly endMs: number;
}

function checkInterval(intervalMs: number): void {
  if (!Number.isInteger(intervalMs) || intervalMs <= 0) {
    throw new RangeError(`sampling interval must be a positive integer of ms, got ${intervalMs}`);
  }
}

/** The latest grid point at or before `ms`. */
export function gridFloor(ms: number, intervalMs: number): number {
  checkInterval(intervalMs);
  return Math.floor(ms / intervalMs) * intervalMs;
}

/** The earliest grid point at or after `ms`. */
export function gridCeil(ms: number, intervalMs: number): number {
  checkInterval(intervalMs);
  return Math.ceil(ms / intervalMs) * intervalMs;
}

/** Grid points t with fromMs <= t <= toMs, ascending. */
export function gridPoints(fromMs: number, toMs: number, intervalMs: number): number[] {
  const points: number[] = [];
  for (let t = gridCeil(fromMs, intervalMs); t <= toMs; t += intervalMs) points.push(t);
  return points;
}

/** The part of [t - interval, t) inside the running span, or undefined when they do not overlap. */
export function sampleSpan(t: number, intervalMs: number, running: RunningSpan): Span | undefined {
  const startMs = Math.max(t - intervalMs, running.startMs);
  const endMs = running.endMs === null ? t : Math.min(t, running.endMs);
  return endMs > startMs ? { startMs, endMs } : undefined;
}

/**
 * Grid points whose sample overlaps the running span, among those in [fromMs, toMs]. For a restart
 * backfill: every point a pod should have had in the look-back, computed from the pod alone.
 */
export function gridPointsOverlapping(
  running: RunningSpan,
  fromMs: number,
  toMs: number,
  intervalMs: number,
): number[] {
  // The first point after the start covers it; the last one needed is the first at or after the end.
  const first = Math.max(gridFloor(running.startMs, intervalMs) + intervalMs, gridCeil(fromMs, intervalMs));
  const last = running.endMs === null ? toMs : Math.min(toMs, gridCeil(running.endMs, intervalMs));
  const points: number[] = [];
  for (let t = first; t <= last; t += intervalMs) {
    if (sampleSpan(t, intervalMs, running)) points.push(t);
  }
  return points;
}

export function podSampleId(clusterId: string, podUid: string, t: number): string {
  return deterministicId(clusterId, podUid, POD_ALLOCATION_KIND, t);
}

/** `gpuKey` is the GPU uuid, or `<uuid>/<GPU_I_ID>` for a MIG instance. */
export function bandwidthSampleId(
  clusterId: string,
  gpuKey: string,
  podUid: string | undefined,
  t: number,
): string {
  return deterministicId(clusterId, gpuKey, podUid ?? UNALLOCATED_SUBJECT, GPU_BANDWIDTH_KIND, t);
}

/**
 * Kafka keys of the raw samples: facts the observed thing fixes, never the subject, project or holder,
 * which replicas (config rollouts, relabels, watch lag) can disagree on. All copies of one observation
 * then meet in one partition, hence one aggregator task, and are counted once there.
 */
export function podSampleKey(sample: { readonly clusterId: string; readonly podUid: string }): string {
  return `${sample.clusterId}/${sample.podUid}`;
}

/** The physical GPU's uuid: also for its MIG instances and for its unallocated time. */
export function bandwidthSampleKey(sample: { readonly clusterId: string; readonly gpuUuid: string }): string {
  return `${sample.clusterId}/${sample.gpuUuid}`;
}
