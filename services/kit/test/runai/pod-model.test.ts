import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  describeRunaiPod,
  isBillablePod,
  isRunaiPod,
  migDeviceOf,
  projectOf,
  runningSpanOf,
  workloadTypeOf,
} from '@gpu-meter/kit/runai';
import { a100Node, attribution, fractionalPod, reservationPod, trainingPod } from './fixtures.js';

const MIB = 2 ** 20;

describe('describeRunaiPod', () => {
  it('reads a whole-GPU training pod completely', () => {
    expect(describeRunaiPod(trainingPod(), a100Node, attribution)).toEqual({
      uid: '6f1c1f0e-1b7a-4c53-9d0e-6a7e3e1f0a01',
      name: 'train-resnet-0-0',
      namespace: 'runai-team-a',
      nodeName: 'dgx-a100-01',
      clusterId: 'cluster-eu-1',
      project: 'team-a',
      attributed: true,
      subject: 'acme-corp',
      department: 'research',
      queue: 'team-a',
      workloadType: 'Training',
      user: 'alice@example.com',
      workloadId: 'wl-0001',
      gpus: 2,
      gpuMemoryBytes: 2 * 81920 * MIB,
      gpuType: 'NVIDIA-A100-SXM4-80GB',
      migProfile: null,
      cpuCores: 4.5,
      memoryBytes: 32 * 2 ** 30 + 512 * MIB,
      gpuGroup: undefined,
      span: { startMs: Date.parse('2026-11-29T10:00:05Z'), endMs: null },
      inputIssues: [],
    });
  });

  it('leaves whole-GPU memory at 0 when the node does not tell the device memory', () => {
    const node = { metadata: { name: 'n', labels: { 'nvidia.com/gpu.product': 'Tesla-T4' } } };
    const pod = describeRunaiPod(trainingPod(), node, attribution);
    expect([pod.gpuMemoryBytes, pod.gpuType]).toEqual([0, 'Tesla-T4']);
    expect(describeRunaiPod(trainingPod(), undefined, attribution).gpuType).toBe('');
  });

  it('reads a fractional pod from the Run:ai annotations, not limits', () => {
    const pod = describeRunaiPod(fractionalPod('nb', 'uid-nb', '0.5', 'g1'), a100Node, attribution);
    expect(pod).toMatchObject({
      project: 'team-b',
      subject: 'team-b',
      department: 'product',
      workloadType: 'Interactive',
      gpus: 0.5,
      gpuMemoryBytes: 40960 * MIB,
      gpuType: 'NVIDIA-A100-SXM4-80GB',
      migProfile: null,
      gpuGroup: 'g1',
      cpuCores: 1,
      memoryBytes: 2e9,
    });
  });

  it('falls back to gpu-fraction and gpu-memory', () => {
    const pod = trainingPod({
      metadata: { annotations: { 'gpu-fraction': '0.25', 'gpu-memory': '10240' } },
      spec: { containers: [{ name: 'c', resources: { requests: { cpu: '250m' } } }] },
    });
    expect(describeRunaiPod(pod, a100Node, attribution)).toMatchObject({
      gpus: 0.25,
      gpuMemoryBytes: 10240 * MIB,
    });
  });

  it('reads a MIG pod: slices, profile and the GPU type of the MIG device', () => {
    const pod = trainingPod({
      metadata: {
        annotations: {
          'runai-allocated-mig-gpus': '1',
          'runai-allocated-gpu-memory': '10240',
          'runai-mig-device': JSON.stringify({
            name: '1g.10gb',
            position: 0,
            gpuamount: 1,
            gpuIdx: 3,
            gputype: 'NVIDIA-A100-SXM4-80GB-MIG-1g.10gb',
            deviceUUID: 'MIG-28810d46-0180-5139-a975-020bdc7f9cb1',
          }),
        },
      },
      spec: { containers: [{ name: 'c', resources: { limits: { 'nvidia.com/mig-1g.10gb': '1' } } }] },
    });
    expect(describeRunaiPod(pod, a100Node, attribution)).toMatchObject({
      gpus: 1,
      migProfile: '1g.10gb',
      gpuType: 'NVIDIA-A100-SXM4-80GB-MIG-1g.10gb',
      gpuMemoryBytes: 10240 * MIB,
    });
    expect(migDeviceOf(pod)?.deviceUuid).toBe('MIG-28810d46-0180-5139-a975-020bdc7f9cb1');
  });

  it('reads MIG from nvidia.com/mig-<profile> limits when the annotations are absent', () => {
    const pod = trainingPod({
      spec: { containers: [{ name: 'c', resources: { limits: { 'nvidia.com/mig-3g.40gb': '2' } } }] },
    });
    expect(describeRunaiPod(pod, a100Node, attribution)).toMatchObject({
      gpus: 2,
      migProfile: '3g.40gb',
      gpuType: 'NVIDIA-A100-SXM4-80GB',
      gpuMemoryBytes: 0,
    });
  });

  it('ignores a malformed runai-mig-device rather than failing the pod', () => {
    const pod = trainingPod({ metadata: { annotations: { 'runai-mig-device': '{not json' } } });
    expect(migDeviceOf(pod)).toBeUndefined();
    expect(describeRunaiPod(pod, a100Node, attribution).gpus).toBe(2);
  });

  it('counts CPU-only Run:ai pods with no GPU type', () => {
    const pod = trainingPod({
      spec: { containers: [{ name: 'c', resources: { requests: { cpu: '2', memory: '1Gi' } } }] },
    });
    expect(describeRunaiPod(pod, a100Node, attribution)).toMatchObject({
      gpus: 0,
      gpuType: '',
      gpuMemoryBytes: 0,
    });
  });

  it('takes the largest init container when it requests more than the app containers', () => {
    const pod = trainingPod({
      spec: {
        initContainers: [{ name: 'init', resources: { requests: { cpu: '8', memory: '1Gi' } } }],
        containers: [{ name: 'c', resources: { requests: { cpu: '2', memory: '4Gi' } } }],
      },
    });
    expect(describeRunaiPod(pod, a100Node, attribution)).toMatchObject({
      cpuCores: 8,
      memoryBytes: 4 * 2 ** 30,
    });
  });

  it("uses the configured cluster id, never the pod's clusterId annotation (its tenant can write it)", () => {
    const pod = trainingPod();
    delete pod.metadata!.annotations!.clusterId;
    expect(describeRunaiPod(pod, a100Node, attribution).clusterId).toBe('cluster-eu-1');
    expect(describeRunaiPod(pod, a100Node, { ...attribution, clusterId: 'other' }).clusterId).toBe('other');
    const forged = trainingPod();
    forged.metadata!.annotations!.clusterId = 'cluster-us-9';
    expect(describeRunaiPod(forged, a100Node, attribution).clusterId).toBe('cluster-eu-1');
  });
});

describe('attribution', () => {
  const bare = (namespace: string, labels: Record<string, string>): V1Pod => ({
    metadata: { name: 'p', namespace, labels },
    spec: { schedulerName: 'runai-scheduler', containers: [] },
  });

  it('takes the project from the label, then the runai-<project> namespace, then the queue', () => {
    expect(projectOf(bare('runai-x', { project: 'p1', 'runai/queue': 'q' }))).toBe('p1');
    expect(projectOf(bare('runai-x', { 'runai/queue': 'q' }))).toBe('x');
    expect(projectOf(bare('ml', { 'runai/queue': 'q' }))).toBe('q');
    expect(projectOf(bare('ml', {}))).toBeUndefined();
    expect(projectOf(bare('runai-', {}))).toBeUndefined();
  });

  it('bills an unattributable pod to the fallback subject and says so', () => {
    expect(describeRunaiPod(bare('default', {}), undefined, attribution)).toMatchObject({
      project: '',
      attributed: false,
      subject: 'unattributed',
      department: '',
    });
  });

  it('maps subject to the customer, else the project', () => {
    expect(describeRunaiPod(bare('runai-team-a', {}), undefined, attribution).subject).toBe('acme-corp');
    expect(describeRunaiPod(bare('runai-team-c', {}), undefined, attribution)).toMatchObject({
      subject: 'team-c',
      department: '',
    });
  });

  it('derives the workload type from workloadKind, else the priority class', () => {
    const pod = (labels: Record<string, string>, priorityClassName?: string): V1Pod => ({
      metadata: { labels },
      spec: { containers: [], ...(priorityClassName ? { priorityClassName } : {}) },
    });
    expect(workloadTypeOf(pod({ workloadKind: 'DistributedWorkload' }, 'train'))).toBe('DistributedWorkload');
    expect(workloadTypeOf(pod({ workloadKind: 'Weird' }, 'inference'))).toBe('Inference');
    expect(workloadTypeOf(pod({}, 'train'))).toBe('Training');
    expect(workloadTypeOf(pod({}, 'build'))).toBe('Interactive');
    expect(workloadTypeOf(pod({}, 'interactive-preemptible'))).toBe('Interactive');
    expect(workloadTypeOf(pod({}, 'system-node-critical'))).toBe('Unknown');
    expect(workloadTypeOf(pod({}))).toBe('Unknown');
  });

  it('bills Run:ai pods but not reservation pods or other schedulers', () => {
    expect(isBillablePod(trainingPod())).toBe(true);
    expect(isRunaiPod(reservationPod('r', 'g', 'GPU-1'))).toBe(true);
    expect(isBillablePod(reservationPod('r', 'g', 'GPU-1'))).toBe(false);
    expect(isBillablePod(trainingPod({ spec: { schedulerName: 'default-scheduler' } }))).toBe(false);
  });
});

describe('runningSpanOf', () => {
  it('starts at status.startTime, also when the client gives a Date', () => {
    expect(runningSpanOf(trainingPod())).toEqual({
      startMs: Date.parse('2026-11-29T10:00:05Z'),
      endMs: null,
    });
    const listed = trainingPod();
    (listed.status as { startTime: unknown }).startTime = new Date('2026-11-29T10:00:05.250Z');
    expect(runningSpanOf(listed)?.startMs).toBe(Date.parse('2026-11-29T10:00:05.250Z'));
  });

  it('falls back to the earliest container start, and is undefined before any start', () => {
    const pod = trainingPod();
    delete pod.status!.startTime;
    expect(runningSpanOf(pod)?.startMs).toBe(Date.parse('2026-11-29T10:00:20Z'));
    expect(
      runningSpanOf(trainingPod({ status: { phase: 'Pending', startTime: null, containerStatuses: [] } })),
    ).toBe(undefined);
  });

  it('ends at the last container finish of a Succeeded or Failed pod, to the millisecond', () => {
    for (const phase of ['Succeeded', 'Failed']) {
      const pod = trainingPod({
        status: {
          phase,
          containerStatuses: [
            { name: 'a', state: { terminated: { exitCode: 0, finishedAt: '2026-11-29T10:05:07.431Z' } } },
            { name: 'b', state: { terminated: { exitCode: 0, finishedAt: '2026-11-29T10:05:01Z' } } },
          ],
        },
      });
      expect(runningSpanOf(pod)).toEqual({
        startMs: Date.parse('2026-11-29T10:00:05Z'),
        endMs: Date.parse('2026-11-29T10:05:07.431Z'),
      });
    }
  });

  it('ends a finished pod without container finish times at its last condition change', () => {
    const evicted = trainingPod({
      status: {
        phase: 'Failed',
        reason: 'Evicted',
        containerStatuses: [],
        conditions: [
          { type: 'PodScheduled', status: 'True', lastTransitionTime: '2026-11-29T10:00:00Z' },
          { type: 'Ready', status: 'False', lastTransitionTime: '2026-11-29T10:03:00Z' },
        ],
      },
    });
    expect(runningSpanOf(evicted)?.endMs).toBe(Date.parse('2026-11-29T10:03:00Z'));
    const bare = trainingPod({ status: { phase: 'Succeeded', containerStatuses: [] } });
    expect(runningSpanOf(bare)).toEqual({
      startMs: Date.parse('2026-11-29T10:00:05Z'),
      endMs: Date.parse('2026-11-29T10:00:05Z'),
    });
  });

  it('keeps a Running pod open even when a container has terminated (restarts)', () => {
    const pod = trainingPod({
      status: {
        containerStatuses: [{ name: 'a', state: { terminated: { finishedAt: '2026-11-29T10:01:00Z' } } }],
      },
    });
    expect(runningSpanOf(pod)?.endMs).toBeNull();
  });
});
