import type { V1Node, V1Pod } from '@kubernetes/client-node';

/**
 * Pods and nodes shaped like a real Run:ai cluster's (kubectl get -o json, trimmed), as JSON the watch
 * delivers: times are RFC 3339 strings.
 */
export const a100Node: V1Node = {
  apiVersion: 'v1',
  kind: 'Node',
  metadata: {
    name: 'dgx-a100-01',
    uid: 'node-uid-1',
    labels: {
      'kubernetes.io/hostname': 'dgx-a100-01',
      'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB',
      'nvidia.com/gpu.memory': '81920',
      'nvidia.com/gpu.count': '8',
      'nvidia.com/mig.strategy': 'mixed',
    },
  },
};

export const attribution = {
  clusterId: 'cluster-eu-1',
  projectDepartments: { 'team-a': 'research', 'team-b': 'product' },
  projectCustomers: { 'team-a': 'acme-corp' },
  fallbackSubject: 'unattributed',
};

export function trainingPod(overrides: { [key: string]: unknown } = {}): V1Pod {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'train-resnet-0-0',
      namespace: 'runai-team-a',
      uid: '6f1c1f0e-1b7a-4c53-9d0e-6a7e3e1f0a01',
      resourceVersion: '123456',
      creationTimestamp: '2026-11-29T10:00:00Z',
      labels: {
        project: 'team-a',
        'runai/queue': 'team-a',
        workloadKind: 'Training',
        'workload-name': 'train-resnet',
        release: 'train-resnet',
      },
      annotations: {
        user: 'alice@example.com',
        workloadId: 'wl-0001',
        clusterId: 'cluster-eu-1',
        'pod-group-name': 'pg-train-resnet-0-0',
      },
      ownerReferences: [
        { apiVersion: 'run.ai/v2alpha1', kind: 'TrainingWorkload', name: 'train-resnet', uid: 'x' },
      ],
    },
    spec: {
      schedulerName: 'runai-scheduler',
      nodeName: 'dgx-a100-01',
      priorityClassName: 'train',
      containers: [
        {
          name: 'train-resnet',
          image: 'nvcr.io/nvidia/pytorch:24.01-py3',
          resources: {
            limits: { 'nvidia.com/gpu': '2', cpu: '8', memory: '64Gi' },
            requests: { 'nvidia.com/gpu': '2', cpu: '4', memory: '32Gi' },
          },
        },
        { name: 'sidecar', image: 'busybox', resources: { requests: { cpu: '500m', memory: '512Mi' } } },
      ],
    },
    status: {
      phase: 'Running',
      startTime: '2026-11-29T10:00:05Z',
      containerStatuses: [
        {
          name: 'train-resnet',
          ready: true,
          restartCount: 0,
          image: 'nvcr.io/nvidia/pytorch:24.01-py3',
          imageID: '',
          state: { running: { startedAt: '2026-11-29T10:00:20Z' } },
        },
      ],
    },
  };
  return merge(pod, overrides) as V1Pod;
}

/** A fractional pod: no nvidia.com/gpu limit; Run:ai annotations carry the fraction and memory. */
export function fractionalPod(name: string, uid: string, fraction: string, group: string): V1Pod {
  return trainingPod({
    metadata: {
      name,
      uid,
      namespace: 'runai-team-b',
      labels: {
        project: 'team-b',
        'runai/queue': 'team-b',
        workloadKind: 'Interactive',
        'runai-gpu-group': group,
      },
      annotations: {
        user: 'bob',
        'runai-allocated-gpus': fraction,
        'gpu-fraction': fraction,
        'runai-allocated-gpu-memory': String(Number(fraction) * 81920),
        'runai-gpu-group': group,
      },
    },
    spec: {
      priorityClassName: 'build',
      containers: [
        { name: 'jupyter', image: 'jupyter/base', resources: { requests: { cpu: '1', memory: '2G' } } },
      ],
    },
  });
}

export function reservationPod(name: string, group: string, gpuUuid: string): V1Pod {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'runai-reservation',
      uid: `uid-${name}`,
      labels: { app: 'runai-reservation', 'runai-gpu-group': group },
      annotations: { 'run.ai/reserve_for_gpu_index': gpuUuid },
    },
    spec: {
      schedulerName: 'runai-scheduler',
      nodeName: 'dgx-a100-01',
      containers: [
        {
          name: 'runai-reservation',
          image: 'runai/reservation',
          resources: { limits: { 'nvidia.com/gpu': '1' } },
        },
      ],
    },
    status: { phase: 'Running', startTime: '2026-11-29T09:00:00Z' },
  };
  return pod as unknown as V1Pod;
}

/** Deep merge where objects merge and everything else (arrays included) replaces. */
function merge(base: unknown, patch: unknown): unknown {
  if (!isObject(base) || !isObject(patch)) return patch === undefined ? base : patch;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) out[key] = merge(base[key], value);
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
