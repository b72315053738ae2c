import { deterministicId, type BandwidthSample, type PodAllocationSample } from '@gpu-meter/kit/contracts';
import { podSampleKey } from '@gpu-meter/kit/runai';
import { bandwidthFixture } from '../support/fixtures.js';

/**
 * Synthetic pod allocation samples for benchmarks: `pods` pods of `subjects` subjects, one sample per pod per
 * grid point, in event-time order, so windows fill and close as they would in a cluster.
 */
export function* benchSamples(options: {
  count: number;
  pods: number;
  subjects: number;
  intervalMs: number;
  startMs: number;
}): Generator<PodAllocationSample> {
  const { pods, subjects, intervalMs, startMs } = options;
  for (let i = 0; i < options.count; i += 1) {
    const pod = i % pods;
    const t = startMs + (Math.floor(i / pods) + 1) * intervalMs;
    const project = `project-${pod % subjects}`;
    yield {
      id: deterministicId('bench', `pod-${pod}`, 'pod-allocation', t),
      clusterId: 'bench',
      observedAtMs: t,
      spanStartMs: t - intervalMs,
      spanEndMs: t,
      podUid: `uid-${pod}`,
      podName: `pod-${pod}`,
      namespace: `runai-${project}`,
      nodeName: `node-${pod % 16}`,
      subject: `customer-${pod % subjects}`,
      project,
      department: 'research',
      queue: project,
      workloadType: pod % 3 === 0 ? 'Inference' : 'Training',
      user: `user-${pod % 50}`,
      workloadId: `w-${pod}`,
      gpuType: pod % 2 === 0 ? 'NVIDIA-A100-SXM4-80GB' : 'NVIDIA-H100-80GB-HBM3',
      migProfile: null,
      gpus: pod % 4 === 0 ? 0.5 : 1,
      gpuMemoryBytes: 40 * 2 ** 30,
      cpuCores: 8,
      memoryBytes: 64 * 2 ** 30,
    };
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export interface BenchTopics {
  readonly pod: string;
  readonly bandwidth: string;
  readonly usage: string;
}

type Keyed = { key: string; value: Buffer; partition?: number };

/**
 * The aggregator's benchmark backlog: `count` pod samples a day in the past, then, on every partition of
 * both inputs, one sample 23 h later that closes every window. The bandwidth input gets its closers too: an
 * input that never had a record holds stream time back for IDLE_ADVANCE_MS after assignment (it may be about
 * to deliver), which would time the idle wait instead of the work.
 */
export function aggregatorBacklog(
  encode: { pod: (s: PodAllocationSample) => Buffer; bandwidth: (s: BandwidthSample) => Buffer },
  count: number,
  partitions: number,
): { pod: Keyed[]; bandwidth: Keyed[] } {
  const startMs = Math.floor((Date.now() - 24 * 3600_000) / 60_000) * 60_000;
  const pod: Keyed[] = [
    ...benchSamples({ count, pods: 2000, subjects: 200, intervalMs: 15_000, startMs }),
  ].map((sample) => ({ key: podSampleKey(sample), value: encode.pod(sample) }));
  const closerTime = startMs + 23 * 3600_000;
  const [template] = benchSamples({
    count: 1,
    pods: 1,
    subjects: 1,
    intervalMs: 15_000,
    startMs: closerTime,
  });
  const bandwidth: Keyed[] = [];
  for (let partition = 0; partition < partitions; partition += 1) {
    const key = 'bench-closer';
    pod.push({
      key,
      partition,
      value: encode.pod({ ...template!, id: `closer-${partition}`, subject: key }),
    });
    const closer = bandwidthFixture({
      id: `bw-closer-${partition}`,
      subject: key,
      observedAtMs: closerTime,
      spanStartMs: closerTime - 15_000,
      spanEndMs: closerTime,
    });
    bandwidth.push({ key, partition, value: encode.bandwidth(closer) });
  }
  return { pod, bandwidth };
}

/** The environment of a benchmarked aggregator on `topics` (late and dead-letter topics derived). */
export function benchAggregatorEnv(
  stackEnv: Record<string, string>,
  topics: BenchTopics,
  group: string,
  partitions: number,
  logLevel = 'info',
): Record<string, string> {
  return {
    ...stackEnv,
    LOG_LEVEL: logLevel,
    OPS_PORT: '0',
    POD_ALLOCATIONS_TOPIC: topics.pod,
    BANDWIDTH_SAMPLES_TOPIC: topics.bandwidth,
    USAGE_EVENTS_TOPIC: topics.usage,
    LATE_SAMPLES_TOPIC: `${topics.usage}.late`,
    DEAD_LETTERS_TOPIC: `${topics.usage}.dlq`,
    CONSUMER_GROUP_ID: group,
    TRANSACTIONAL_ID_PREFIX: group,
    TOPIC_PARTITIONS: String(partitions),
  };
}
