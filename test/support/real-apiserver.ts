import { randomUUID } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1ContainerPort, type V1Pod } from '@kubernetes/client-node';
import { createKubeConfig } from '@gpu-meter/kit/kubernetes';
import { expect, onTestFinished } from 'vitest';
import { stackEnv } from './kafka.js';

/**
 * The local stack's real kube-apiserver (1.35.4 on etcd 3.6.5, test/stack/kube-apiserver.sh, started by
 * `npm run stack:up`), reached as a production collector reaches its API: a kubeconfig with a CA-verified
 * HTTPS server and a bearer token. There is no kubelet: tests drive each pod's lifecycle through the
 * pods/status subresource and delete as a kubelet and a user do.
 */

export const GPU_PRODUCT = 'NVIDIA-A100-SXM4-80GB';
const IMAGE = 'nvcr.io/nvidia/pytorch:24.01-py3';
export interface RealApi {
  kubeconfig: string;
  kc: KubeConfig;
  api: CoreV1Api;
  namespace: string;
  node: string;
}

/** The stack's kubeconfig (STACK_KUBECONFIG in .stack/env or the environment); absent is a failure. */
export function stackKubeconfig(): string {
  const path = stackEnv().STACK_KUBECONFIG;
  if (!path) {
    throw new Error(
      'No STACK_KUBECONFIG: these tests need the real kube-apiserver of the local stack. Start it with ' +
        '`npm run stack:up` (or `bash test/stack/kube-apiserver.sh start`; it writes .stack/kube/kubeconfig ' +
        'and STACK_KUBECONFIG into .stack/env), or set STACK_KUBECONFIG to a test cluster you may write to.',
    );
  }
  return path;
}

/** A namespace (with its default service account: no controller manager makes one) and a GPU node. */
export async function realApi(): Promise<RealApi> {
  const kubeconfig = stackKubeconfig();
  // The kit's own loader, as the collector's KUBECONFIG setting uses it.
  const kc = createKubeConfig({ kubeconfig, k8sApiUrl: undefined });
  expect(kc.getCurrentCluster()?.server).toMatch(/^https:/);
  expect(kc.getCurrentUser()?.token, 'the kubeconfig authenticates with a bearer token').toBeTruthy();
  const api = kc.makeApiClient(CoreV1Api);
  const id = randomUUID().slice(0, 8);
  const namespace = `gm-test-${id}`;
  const node = `gm-node-${id}`;
  await api.createNamespace({ body: { metadata: { name: namespace } } }).catch((error: unknown) => {
    throw new Error(
      `the API server of ${kubeconfig} (${kc.getCurrentCluster()?.server}) refused a namespace: ` +
        `${(error as Error).message}; is it up? (bash test/stack/kube-apiserver.sh start)`,
    );
  });
  // Without a namespace controller the namespace stays Terminating after this; the stack's etcd starts
  // empty on each start.
  onTestFinished(() => api.deleteNamespace({ name: namespace }).then(() => undefined));
  await api.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'default' } } });
  await api.createNode({
    body: {
      metadata: {
        name: node,
        labels: {
          'kubernetes.io/hostname': node,
          'nvidia.com/gpu.product': GPU_PRODUCT,
          'nvidia.com/gpu.count': '4',
          'nvidia.com/gpu.memory': '81920',
          'nvidia.com/gpu.present': 'true',
        },
      },
    },
  });
  onTestFinished(() => api.deleteNode({ name: node }).then(() => undefined));
  const capacity = { cpu: '64', memory: '512Gi', pods: '110', 'nvidia.com/gpu': '4' };
  const created = await api.readNode({ name: node });
  await api.replaceNodeStatus({
    name: node,
    body: { ...created, status: { capacity, allocatable: capacity } },
  });
  return { kubeconfig, kc, api, namespace, node };
}

export type Gpu = { whole: number } | { fraction: number; gpu: number };

/** What a test may add to a pod: labels and annotations (over the defaults), a container port. */
export interface PodExtras {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ports?: V1ContainerPort[];
}

/** A scheduled Run:ai pod (spec.nodeName set, as the Run:ai scheduler binds it), still Pending. */
export async function createPod(
  real: RealApi,
  name: string,
  gpu: Gpu,
  extras: PodExtras = {},
): Promise<V1Pod> {
  const annotations: Record<string, string> = { user: 'alice', workloadId: `wl-${name}` };
  const gpuLimits: Record<string, string> = {};
  if ('whole' in gpu) {
    gpuLimits['nvidia.com/gpu'] = String(gpu.whole);
    annotations['runai-allocated-gpus'] = String(gpu.whole);
  } else {
    annotations['gpu-fraction'] = String(gpu.fraction);
    annotations['runai-allocated-gpus'] = String(gpu.fraction);
    annotations['runai-allocated-gpu-memory'] = String(gpu.fraction * 81920);
    annotations['runai-gpu'] = String(gpu.gpu);
  }
  const resources = { cpu: '1', memory: '2Gi', ...gpuLimits };
  const pod = await real.api.createNamespacedPod({
    namespace: real.namespace,
    body: {
      metadata: {
        name,
        labels: { project: 'team-a', 'runai/queue': 'team-a', workloadKind: 'Training', ...extras.labels },
        annotations: { ...annotations, ...extras.annotations },
      },
      spec: {
        schedulerName: 'runai-scheduler',
        nodeName: real.node,
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        containers: [
          {
            name: 'main',
            image: IMAGE,
            resources: { requests: resources, limits: resources },
            ...(extras.ports ? { ports: extras.ports } : {}),
          },
        ],
      },
    },
  });
  onTestFinished(() =>
    real.api.deleteNamespacedPod({ name, namespace: real.namespace, gracePeriodSeconds: 0 }).then(
      () => undefined,
      () => undefined,
    ),
  );
  return pod;
}

/** What a kubelet reports once the container runs: phase Running, startTime and startedAt now. */
export async function markRunning(real: RealApi, name: string, podIP = '10.244.0.10'): Promise<V1Pod> {
  const pod = await real.api.readNamespacedPod({ name, namespace: real.namespace });
  const now = new Date();
  pod.status = {
    phase: 'Running',
    startTime: now,
    hostIP: '10.0.0.10',
    podIP,
    podIPs: [{ ip: podIP }],
    conditions: [
      { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
      { type: 'Initialized', status: 'True', lastTransitionTime: now },
      { type: 'ContainersReady', status: 'True', lastTransitionTime: now },
      { type: 'Ready', status: 'True', lastTransitionTime: now },
    ],
    containerStatuses: [
      {
        name: 'main',
        image: IMAGE,
        imageID: `${IMAGE}@sha256:${'0'.repeat(64)}`,
        containerID: `containerd://${name}`,
        ready: true,
        started: true,
        restartCount: 0,
        state: { running: { startedAt: now } },
      },
    ],
  };
  return real.api.replaceNamespacedPodStatus({ name, namespace: real.namespace, body: pod });
}

/** What a kubelet reports once the container exited 0: phase Succeeded, finishedAt now. */
export async function markSucceeded(real: RealApi, name: string): Promise<V1Pod> {
  const pod = await real.api.readNamespacedPod({ name, namespace: real.namespace });
  const now = new Date();
  const startedAt = pod.status!.containerStatuses![0]!.state!.running!.startedAt!;
  pod.status = {
    ...pod.status,
    phase: 'Succeeded',
    conditions: (pod.status?.conditions ?? []).map((c) =>
      c.type === 'Ready' || c.type === 'ContainersReady'
        ? { ...c, status: 'False', reason: 'PodCompleted', lastTransitionTime: now }
        : c,
    ),
    containerStatuses: [
      {
        ...pod.status!.containerStatuses![0]!,
        ready: false,
        started: false,
        state: {
          terminated: {
            exitCode: 0,
            reason: 'Completed',
            startedAt,
            finishedAt: now,
            containerID: `containerd://${name}`,
          },
        },
      },
    ],
  };
  return real.api.replaceNamespacedPodStatus({ name, namespace: real.namespace, body: pod });
}

export function deletePod(real: RealApi, name: string, gracePeriodSeconds: number): Promise<V1Pod> {
  return real.api.deleteNamespacedPod({ name, namespace: real.namespace, gracePeriodSeconds });
}

/** Created, then Running: its startTime as the API stored it. */
export async function runningPod(
  real: RealApi,
  name: string,
  gpu: Gpu,
  extras: PodExtras = {},
): Promise<number> {
  await createPod(real, name, gpu, extras);
  return ms((await markRunning(real, name)).status?.startTime);
}

/** Succeeded now: its finishedAt as the API stored it. */
export async function succeed(real: RealApi, name: string): Promise<number> {
  const pod = await markSucceeded(real, name);
  return ms(pod.status?.containerStatuses?.[0]?.state?.terminated?.finishedAt);
}

export const ms = (time: Date | undefined): number => {
  if (!(time instanceof Date)) throw new Error(`expected a time from the API, got ${String(time)}`);
  return time.getTime();
};

/** The next whole second plus `offsetMs`: API times are whole seconds, so each step lands mid-second. */
export function nextSecond(offsetMs = 300): number {
  return Math.ceil(Date.now() / 1000) * 1000 + offsetMs;
}
