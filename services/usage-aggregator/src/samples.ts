import type { BandwidthSample, PodAllocationSample, UsageQuantity } from '@gpu-meter/kit/contracts';
import { hash32 } from './dedupe-index.js';

/**
 * The two raw sample kinds reduced to what aggregation needs: identity, time, group dimensions and
 * per-second levels. A level × overlap seconds is the sample's contribution to a quantity.
 */
export interface Sample {
  readonly kind: 'pod' | 'bandwidth';
  readonly id: string;
  readonly observedAtMs: number;
  readonly spanStartMs: number;
  readonly spanEndMs: number;
  /** The group's dimensions; may be the decoded record itself (a group copies just these when it starts). */
  readonly dims: GroupDims;
  readonly levels: Partial<Record<UsageQuantity, number>>;
  /**
   * Bandwidth only: what was observed (cluster, GPU, MIG instance, grid point) and a hash of who observed
   * it. Replicas that disagree on a GPU's holders make different sample ids; the task counts one
   * observer's samples per observation, so their views are never summed.
   */
  readonly observation?: string;
  readonly observer?: number;
}

export interface GroupDims {
  readonly subject: string;
  readonly clusterId: string;
  readonly project: string;
  readonly department: string;
  readonly workloadType: string;
  readonly gpuType: string;
}

const COMMON_FIELDS = [
  'id',
  'observedAtMs',
  'spanStartMs',
  'spanEndMs',
  'subject',
  'clusterId',
  'project',
  'department',
  'workloadType',
  'gpuType',
] as const;

/**
 * The fields aggregation reads: the aggregator decodes only these (TopicSerde `readFields`), skipping the
 * rest of each record (pod names, uids, users, ...) instead of building strings it would throw away.
 */
export const POD_ALLOCATION_FIELDS = [
  ...COMMON_FIELDS,
  'gpus',
  'gpuMemoryBytes',
  'cpuCores',
  'memoryBytes',
] as const;
export const BANDWIDTH_FIELDS = [
  ...COMMON_FIELDS,
  'gpuUuid',
  'migInstanceId',
  'observer',
  'nvlinkTxBytesPerSecond',
  'nvlinkRxBytesPerSecond',
  'pcieTxBytesPerSecond',
  'pcieRxBytesPerSecond',
  'fbUsedBytes',
] as const;

export type PodAllocationFields = Pick<PodAllocationSample, (typeof POD_ALLOCATION_FIELDS)[number]>;
export type BandwidthFields = Pick<BandwidthSample, (typeof BANDWIDTH_FIELDS)[number]>;

export function fromPodAllocation(s: PodAllocationFields): Sample {
  return {
    kind: 'pod',
    id: s.id,
    observedAtMs: s.observedAtMs,
    spanStartMs: s.spanStartMs,
    spanEndMs: s.spanEndMs,
    dims: s,
    levels: {
      gpuAllocationSeconds: s.gpus,
      gpuMemoryAllocatedByteSeconds: s.gpuMemoryBytes,
      cpuCoreSeconds: s.cpuCores,
      memoryByteSeconds: s.memoryBytes,
    },
  };
}

export function fromBandwidth(s: BandwidthFields): Sample {
  return {
    kind: 'bandwidth',
    id: s.id,
    observedAtMs: s.observedAtMs,
    spanStartMs: s.spanStartMs,
    spanEndMs: s.spanEndMs,
    dims: s,
    observation: `${s.clusterId}\u0000${s.gpuUuid}\u0000${s.migInstanceId ?? ''}\u0000${s.observedAtMs}`,
    observer: hash32(s.observer),
    levels: {
      nvlinkTxBytes: s.nvlinkTxBytesPerSecond,
      nvlinkRxBytes: s.nvlinkRxBytesPerSecond,
      pcieTxBytes: s.pcieTxBytesPerSecond,
      pcieRxBytes: s.pcieRxBytesPerSecond,
      gpuMemoryUsedByteSeconds: s.fbUsedBytes,
    },
  };
}

/**
 * No real level comes near this (bytes of GPU memory ~1e11, bytes/s of NVLink ~1e12), and below it
 * level × span × any plausible number of samples stays finite: one absurd sample must not turn a whole
 * group window into Infinity.
 */
export const MAX_LEVEL = 1e18;

/**
 * Everything a decoded sample must satisfy before it may change a bill: undefined when it does, else the
 * reason (for the dead letter). No object per sample: this runs for every record.
 */
export function invalidReason(sample: Sample, maxSampleSpanMs: number): string | undefined {
  if (typeof sample.id !== 'string' || sample.id.trim() === '') return 'missing sample id';
  if (typeof sample.dims.subject !== 'string' || sample.dims.subject.trim() === '') return 'missing subject';
  if (!Number.isSafeInteger(sample.observedAtMs))
    return `observedAtMs ${sample.observedAtMs} is not a safe integer`;
  if (!Number.isSafeInteger(sample.spanStartMs))
    return `spanStartMs ${sample.spanStartMs} is not a safe integer`;
  if (!Number.isSafeInteger(sample.spanEndMs)) return `spanEndMs ${sample.spanEndMs} is not a safe integer`;
  if (sample.spanEndMs <= sample.spanStartMs)
    return `spanEndMs ${sample.spanEndMs} <= spanStartMs ${sample.spanStartMs}`;
  const span = sample.spanEndMs - sample.spanStartMs;
  if (span > maxSampleSpanMs) return `span of ${span} ms exceeds MAX_SAMPLE_SPAN_MS ${maxSampleSpanMs}`;
  const levels = sample.levels;
  for (const name in levels) {
    const level = levels[name as keyof typeof levels]!;
    if (!Number.isFinite(level)) return `${name} level ${level} is not finite`;
    if (level < 0) return `${name} level ${level} is negative`;
    if (level > MAX_LEVEL) return `${name} level ${level} is implausibly large (> ${MAX_LEVEL})`;
  }
  return undefined;
}

/**
 * What a sample's times must satisfy against facts it cannot write: its span lies in the sampling interval
 * before its observation time (docs/DESIGN.md §3), and its observation time is not ahead of the broker's clock
 * (the record's timestamp: LogAppendTime on the raw topics) by more than the tolerance. A sample that fails
 * is dead-lettered before it touches the watermark, so one bad clock cannot move stream time.
 */
export function timeInvalidReason(
  sample: Sample,
  limits: { readonly samplingIntervalMs: number; readonly maxClockAheadMs: number },
  recordTimestampMs: number | undefined,
): string | undefined {
  const { observedAtMs, spanStartMs, spanEndMs } = sample;
  if (spanEndMs > observedAtMs) return `spanEndMs ${spanEndMs} is after observedAtMs ${observedAtMs}`;
  if (spanStartMs < observedAtMs - limits.samplingIntervalMs)
    return (
      `spanStartMs ${spanStartMs} is more than the sampling interval SAMPLING_INTERVAL_MS ` +
      `${limits.samplingIntervalMs} before observedAtMs ${observedAtMs}`
    );
  if (recordTimestampMs !== undefined && observedAtMs > recordTimestampMs + limits.maxClockAheadMs)
    return (
      `observedAtMs ${observedAtMs} is ${observedAtMs - recordTimestampMs} ms ahead of the broker's clock ` +
      `(record timestamp ${recordTimestampMs}; MAX_CLOCK_AHEAD_MS ${limits.maxClockAheadMs}): ` +
      "the producer's clock is wrong"
    );
  return undefined;
}
