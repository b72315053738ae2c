import { deterministicId, type PodAllocationSample } from '@gpu-meter/kit';

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
