import type { BandwidthSample, PodAllocationSample, UsageEvent } from '@gpu-meter/kit/contracts';

/** Realistic records, one per contract, for round-trip and mapping tests. */
export function podAllocationFixture(overrides: Partial<PodAllocationSample> = {}): PodAllocationSample {
  return {
    id: 'a'.repeat(64),
    clusterId: 'cluster-a',
    observedAtMs: 1_767_225_615_000,
    spanStartMs: 1_767_225_600_000,
    spanEndMs: 1_767_225_615_000,
    podUid: '0f9c2a3e-1b7d-4c55-9d0e-4c1f5b8a7e21',
    podName: 'train-llama-0-0',
    namespace: 'runai-team-a',
    nodeName: 'dgx-01',
    subject: 'acme',
    project: 'team-a',
    department: 'research',
    queue: 'team-a',
    workloadType: 'Training',
    user: 'alice@example.com',
    workloadId: 'w-123',
    gpuType: 'NVIDIA-A100-SXM4-80GB',
    migProfile: null,
    gpus: 0.5,
    gpuMemoryBytes: 40 * 1024 ** 3,
    cpuCores: 8,
    memoryBytes: 64 * 1024 ** 3,
    ...overrides,
  };
}

export function bandwidthFixture(overrides: Partial<BandwidthSample> = {}): BandwidthSample {
  return {
    id: 'b'.repeat(64),
    clusterId: 'cluster-a',
    observedAtMs: 1_767_225_615_000,
    spanStartMs: 1_767_225_600_000,
    spanEndMs: 1_767_225_615_000,
    gpuUuid: 'GPU-5f1c9a2e-8d3b-4e6f-a1b2-c3d4e5f60718',
    gpuIndex: 0,
    migInstanceId: null,
    migProfile: null,
    hostname: 'dgx-01',
    gpuType: 'NVIDIA-A100-SXM4-80GB',
    podUid: '0f9c2a3e-1b7d-4c55-9d0e-4c1f5b8a7e21',
    podName: 'train-llama-0-0',
    namespace: 'runai-team-a',
    subject: 'acme',
    project: 'team-a',
    department: 'research',
    workloadType: 'Training',
    share: 0.5,
    nvlinkTxBytesPerSecond: 1.5e9,
    nvlinkRxBytesPerSecond: 1.25e9,
    pcieTxBytesPerSecond: 2.0e8,
    pcieRxBytesPerSecond: 3.5e8,
    fbUsedBytes: 20 * 1024 ** 3,
    observer: '7c1e2d4a-9b3f-4e8a-b5c6-d7e8f9a0b1c2',
    ...overrides,
  };
}

export function usageEventFixture(overrides: Partial<UsageEvent> = {}): UsageEvent {
  return {
    id: 'c'.repeat(64),
    subject: 'acme',
    windowStartMs: 1_767_225_600_000,
    windowEndMs: 1_767_225_660_000,
    clusterId: 'cluster-a',
    project: 'team-a',
    department: 'research',
    workloadType: 'Training',
    gpuType: 'NVIDIA-A100-SXM4-80GB',
    gpuAllocationSeconds: 30,
    gpuMemoryAllocatedByteSeconds: 40 * 1024 ** 3 * 60,
    gpuMemoryUsedByteSeconds: 20 * 1024 ** 3 * 60,
    nvlinkTxBytes: 9e10,
    nvlinkRxBytes: 7.5e10,
    pcieTxBytes: 1.2e10,
    pcieRxBytes: 2.1e10,
    cpuCoreSeconds: 480,
    memoryByteSeconds: 64 * 1024 ** 3 * 60,
    sampleCount: 4,
    correction: false,
    ...overrides,
  };
}
