import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { describeRunaiPod, nodeGpuCapacity, parseDecimal } from '@gpu-meter/kit/runai';
import { a100Node, attribution, fractionalPod, trainingPod } from './fixtures.js';

/**
 * Issue 13 point 5 / docs/DESIGN.md §6.7: annotations are written by the tenant, container limits are enforced by
 * the device plugin and node capacity by the kubelet. An annotation may say how much of a GPU a pod holds,
 * but never less than its nvidia.com/gpu limit nor more than its node has; and a malformed one is reported.
 */
const MIB = 2 ** 20;

/** A node as the API serves it: capacity and allocatable from the device plugin. */
function gpuNode(gpus: number, extra: Record<string, string> = {}): V1Node {
  const amounts = { cpu: '64', memory: '512Gi', 'nvidia.com/gpu': String(gpus), ...extra };
  return {
    metadata: {
      name: 'dgx-a100-01',
      labels: {
        'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB',
        'nvidia.com/gpu.memory': '81920',
        'nvidia.com/gpu.count': String(gpus),
      },
    },
    status: { capacity: amounts, allocatable: amounts },
  };
}

/** A whole-GPU pod with an nvidia.com/gpu limit of `limit`, annotated as given. */
function limitedPod(limit: string, annotations: Record<string, string>): V1Pod {
  return trainingPod({
    metadata: { annotations },
    spec: {
      containers: [
        {
          name: 'train',
          resources: {
            limits: { 'nvidia.com/gpu': limit, cpu: '8', memory: '64Gi' },
            requests: { 'nvidia.com/gpu': limit, cpu: '4', memory: '32Gi' },
          },
        },
      ],
    },
  });
}

const reasons = (pod: { inputIssues: readonly { input: string; reason: string }[] }) =>
  pod.inputIssues.map((issue) => `${issue.input}:${issue.reason}`);

describe('parseDecimal (annotation amounts)', () => {
  it.each([
    ['0', 0],
    ['1', 1],
    ['4', 4],
    ['0.5', 0.5],
    ['0.25', 0.25],
    ['40960', 40960],
  ])('%s is %d', (text, value) => {
    expect(parseDecimal(text)).toBe(value);
  });

  it.each(['0x10', '1e17', ' 1 ', '-1', 'Infinity', '1.5.2', 'abc', '', 'NaN', '+1', '.5', '1.', '1_000'])(
    'rejects %j',
    (text) => {
      expect(parseDecimal(text)).toBeUndefined();
    },
  );
});

describe('nodeGpuCapacity', () => {
  it('reads allocatable, then capacity, then the GPU feature discovery count', () => {
    expect(nodeGpuCapacity(gpuNode(4))).toBe(4);
    expect(nodeGpuCapacity({ status: { capacity: { 'nvidia.com/gpu': '2' } } })).toBe(2);
    expect(nodeGpuCapacity(a100Node)).toBe(8);
  });
  it('is 0 for a node that states its resources without GPUs, unknown without a node', () => {
    expect(nodeGpuCapacity({ status: { capacity: { cpu: '8' }, allocatable: { cpu: '8' } } })).toBe(0);
    expect(nodeGpuCapacity(undefined)).toBeUndefined();
    expect(nodeGpuCapacity({ metadata: { name: 'bare' } })).toBeUndefined();
  });
});

describe('GPU annotations against limits and node capacity', () => {
  it('runai-allocated-gpus="0" on a pod with nvidia.com/gpu: 4 bills 4, and says so', () => {
    const pod = describeRunaiPod(limitedPod('4', { 'runai-allocated-gpus': '0' }), gpuNode(8), attribution);
    expect(pod.gpus).toBe(4);
    expect(pod.gpuMemoryBytes).toBe(4 * 81920 * MIB);
    expect(reasons(pod)).toEqual(['runai-allocated-gpus:below-limit']);
  });

  it('"abc" beside a valid gpu-fraction is rejected with its reason, and the fraction is billed', () => {
    const pod = describeRunaiPod(
      trainingPod({
        metadata: { annotations: { 'runai-allocated-gpus': 'abc', 'gpu-fraction': '0.5' } },
        spec: { containers: [{ name: 'nb', resources: { requests: { cpu: '1' } } }] },
      }),
      gpuNode(8),
      attribution,
    );
    expect(pod.gpus).toBe(0.5);
    expect(reasons(pod)).toEqual(['runai-allocated-gpus:malformed']);
    expect(pod.inputIssues[0]!.detail).toMatch(/"abc"/);
  });

  it('"abc" with nothing else falls back to the limits, never silently 0', () => {
    const withLimit = describeRunaiPod(
      limitedPod('2', { 'runai-allocated-gpus': 'abc' }),
      gpuNode(8),
      attribution,
    );
    expect(withLimit.gpus).toBe(2);
    expect(reasons(withLimit)).toEqual(['runai-allocated-gpus:malformed']);
    const fractional = describeRunaiPod(fractionalPod('f', 'uid-f', 'abc', 'g1'), gpuNode(8), attribution);
    expect(fractional.gpus).toBe(0);
    expect(reasons(fractional)).toContain('runai-allocated-gpus:malformed');
    expect(reasons(fractional)).toContain('gpu-fraction:malformed');
  });

  it.each(['0x10', '1e17', ' 1 ', '-1', 'Infinity', '1.5.2'])(
    'runai-allocated-gpus=%j is malformed: the limit is billed',
    (text) => {
      const pod = describeRunaiPod(
        limitedPod('1', { 'runai-allocated-gpus': text }),
        gpuNode(8),
        attribution,
      );
      expect(pod.gpus).toBe(1);
      expect(reasons(pod)).toEqual(['runai-allocated-gpus:malformed']);
    },
  );

  it('an annotation above the node allocatable nvidia.com/gpu is capped at it', () => {
    const pod = describeRunaiPod(limitedPod('1', { 'runai-allocated-gpus': '16' }), gpuNode(8), attribution);
    expect(pod.gpus).toBe(8);
    expect(reasons(pod)).toEqual(['runai-allocated-gpus:above-node-capacity']);
    const fraction = describeRunaiPod(fractionalPod('f', 'uid-f', '3', 'g1'), gpuNode(2), attribution);
    expect(fraction.gpus).toBe(2);
    expect(reasons(fraction)).toContain('runai-allocated-gpus:above-node-capacity');
  });

  it('a CPU node (capacity without nvidia.com/gpu) bills no GPU whatever the annotation says', () => {
    const cpuNode: V1Node = {
      metadata: { name: 'cpu-1' },
      status: { capacity: { cpu: '32', memory: '128Gi' }, allocatable: { cpu: '32', memory: '128Gi' } },
    };
    const pod = describeRunaiPod(
      trainingPod({
        metadata: { annotations: { 'runai-allocated-gpus': '100000000000000000' } },
        spec: { containers: [{ name: 'c', resources: { requests: { cpu: '1' } } }] },
      }),
      cpuNode,
      attribution,
    );
    expect(pod.gpus).toBe(0);
    expect(reasons(pod)).toEqual(['runai-allocated-gpus:above-node-capacity']);
  });

  it('GPU memory annotations are strict and capped at the node GPU memory', () => {
    const huge = describeRunaiPod(fractionalPod('f', 'uid-f', '0.5', 'g1'), gpuNode(2), attribution);
    expect(huge.gpuMemoryBytes).toBe(40960 * MIB);
    const over = structuredClone(fractionalPod('f', 'uid-f', '0.5', 'g1'));
    over.metadata!.annotations!['runai-allocated-gpu-memory'] = '99999999';
    const capped = describeRunaiPod(over, gpuNode(2), attribution);
    expect(capped.gpuMemoryBytes).toBe(2 * 81920 * MIB);
    expect(reasons(capped)).toEqual(['runai-allocated-gpu-memory:above-node-capacity']);
    over.metadata!.annotations!['runai-allocated-gpu-memory'] = '0x10';
    const malformed = describeRunaiPod(over, gpuNode(2), attribution);
    expect(malformed.gpuMemoryBytes).toBe(0);
    expect(reasons(malformed)).toEqual(['runai-allocated-gpu-memory:malformed']);
  });

  it('a whole-GPU pod is billed at least its GPUs memory, whatever gpu-memory says', () => {
    const pod = describeRunaiPod(limitedPod('2', { 'gpu-memory': '1' }), gpuNode(8), attribution);
    expect(pod.gpuMemoryBytes).toBe(2 * 81920 * MIB);
    expect(reasons(pod)).toEqual(['gpu-memory:below-limit']);
  });

  it('MIG annotations cannot lower a pod with nvidia.com/gpu limits', () => {
    const pod = describeRunaiPod(
      limitedPod('4', {
        'runai-allocated-mig-gpus': '0.1',
        'runai-mig-device': JSON.stringify({ name: '1g.10gb', gputype: 'cheap-gpu' }),
      }),
      gpuNode(8),
      attribution,
    );
    expect(pod).toMatchObject({ gpus: 4, migProfile: null, gpuType: 'NVIDIA-A100-SXM4-80GB' });
    expect(reasons(pod)).toContain('runai-allocated-mig-gpus:conflicts-with-limits');
  });

  it('a MIG count is capped at the instances its limits hold', () => {
    const pod = trainingPod({
      metadata: { annotations: { 'runai-allocated-mig-gpus': '5' } },
      spec: { containers: [{ name: 'c', resources: { limits: { 'nvidia.com/mig-1g.10gb': '1' } } }] },
    });
    const described = describeRunaiPod(pod, gpuNode(3, { 'nvidia.com/mig-1g.10gb': '7' }), attribution);
    expect(described.gpus).toBe(1);
    expect(reasons(described)).toEqual(['runai-allocated-mig-gpus:above-limit']);
  });

  it('CPU and memory requests are capped at the node capacity', () => {
    const pod = trainingPod({
      spec: { containers: [{ name: 'c', resources: { requests: { cpu: '1e17', memory: '1E' } } }] },
    });
    const described = describeRunaiPod(pod, gpuNode(8), attribution);
    expect(described.cpuCores).toBe(64);
    expect(described.memoryBytes).toBe(512 * 2 ** 30);
    expect(reasons(described)).toEqual([
      'requests.cpu:above-node-capacity',
      'requests.memory:above-node-capacity',
    ]);
  });

  it('a pod that agrees with its limits and node has no issues', () => {
    expect(
      describeRunaiPod(limitedPod('2', { 'runai-allocated-gpus': '2' }), gpuNode(8), attribution).inputIssues,
    ).toEqual([]);
    expect(
      describeRunaiPod(fractionalPod('f', 'uid-f', '0.5', 'g1'), gpuNode(8), attribution).inputIssues,
    ).toEqual([]);
  });

  it('on a node not (yet) in the cache an annotation is floored by limits and marked unverified', () => {
    const pod = describeRunaiPod(fractionalPod('f', 'uid-f', '0.5', 'g1'), undefined, attribution);
    expect(pod.gpus).toBe(0.5);
    expect(reasons(pod)).toEqual([
      'runai-allocated-gpus:node-capacity-unknown',
      'runai-allocated-gpu-memory:node-capacity-unknown',
    ]);
  });
});
