import {
  MIG_SLICES,
  migSlices,
  migUuid,
  gpuUuid,
  podLabels,
  type ClusterModel,
  type PodFacts,
  type ReservationFacts,
} from './model.js';
import type { ScenarioNode } from './scenario.js';

/**
 * Kubernetes objects as a Run:ai cluster shows them (DESIGN §2), built for one lifecycle stage. Pure: the
 * cluster state stamps resourceVersion on them. `startMs` turns scenario offsets into timestamps.
 */
export type Stage = 'pending' | 'running' | 'terminated';
export type K8sObject = {
  apiVersion: 'v1';
  kind: string;
  metadata: Record<string, unknown> & { name: string; namespace?: string };
  spec?: unknown;
  status?: unknown;
};

export interface ObjectContext {
  model: ClusterModel;
  startMs: number;
  dcgmHost: string;
  dcgmPort: number;
}

export function timestamp(ctx: ObjectContext, offsetMs: number): string {
  const iso = new Date(ctx.startMs + offsetMs).toISOString();
  return ctx.model.scenario.timestampPrecision === 's' ? iso.replace(/\.\d{3}Z$/, 'Z') : iso;
}

export function cpuQuantity(cores: number): string {
  return Number.isInteger(cores) ? String(cores) : `${Math.round(cores * 1000)}m`;
}

export const nodeIp = (ctx: ObjectContext, node: ScenarioNode) =>
  `10.0.0.${ctx.model.scenario.nodes.indexOf(node) + 10}`;

export function containerStatus(
  ctx: ObjectContext,
  name: string,
  image: string,
  stage: Stage,
  run: { start: number; end: number },
  failed = false,
) {
  const base = { name, image, imageID: `${image}@sha256:${'0'.repeat(64)}`, restartCount: 0 };
  if (stage === 'pending')
    return { ...base, ready: false, started: false, state: { waiting: { reason: 'ContainerCreating' } } };
  const containerID = `containerd://${name}-${run.start}`;
  if (stage === 'running')
    return {
      ...base,
      containerID,
      ready: true,
      started: true,
      state: { running: { startedAt: timestamp(ctx, run.start) } },
    };
  const terminated = {
    exitCode: failed ? 1 : 0,
    reason: failed ? 'Error' : 'Completed',
    startedAt: timestamp(ctx, run.start),
    finishedAt: timestamp(ctx, run.end),
    containerID,
  };
  return { ...base, containerID, ready: false, started: false, state: { terminated } };
}

function conditions(ctx: ObjectContext, stage: Stage, created: number, start: number) {
  if (stage === 'pending') {
    return [
      {
        type: 'PodScheduled',
        status: 'False',
        reason: 'Unschedulable',
        lastTransitionTime: timestamp(ctx, created),
      },
    ];
  }
  const ready = stage === 'running' ? 'True' : 'False';
  return [
    { type: 'PodScheduled', status: 'True', lastTransitionTime: timestamp(ctx, start) },
    { type: 'Initialized', status: 'True', lastTransitionTime: timestamp(ctx, start) },
    { type: 'Ready', status: ready, lastTransitionTime: timestamp(ctx, start) },
    { type: 'ContainersReady', status: ready, lastTransitionTime: timestamp(ctx, start) },
  ];
}

function gpuMetadata(ctx: ObjectContext, p: PodFacts, scheduled: boolean) {
  const labels: Record<string, string> = {};
  const annotations: Record<string, string> = {};
  const d = p.device;
  if (!d) return { labels, annotations, limits: {} as Record<string, string> };
  const limits: Record<string, string> = {};
  if (d.kind === 'whole') {
    limits['nvidia.com/gpu'] = String(d.indices.length);
    if (scheduled) annotations['runai-allocated-gpus'] = String(d.indices.length);
  } else if (d.kind === 'fraction') {
    if (d.requestedBy === 'memory') annotations['gpu-memory'] = String(d.memoryMiB);
    else annotations['gpu-fraction'] = String(d.fraction);
    if (scheduled) {
      annotations['runai-allocated-gpus'] = String(d.fraction);
      annotations['runai-allocated-gpu-memory'] = String(d.memoryMiB);
      annotations['runai-gpu'] = String(d.gpu);
      if (p.gpuGroup) labels['runai-gpu-group'] = p.gpuGroup;
    }
  } else {
    limits[`nvidia.com/mig-${d.profile}`] = '1';
    if (scheduled) {
      const { compute, memoryGb } = migSlices(d.profile);
      const s = ctx.model.scenario;
      annotations['runai-allocated-gpus'] = String(compute / MIG_SLICES);
      annotations['runai-allocated-mig-gpus'] = String(compute / MIG_SLICES);
      annotations['runai-allocated-gpu-memory'] = String(memoryGb * 1024);
      annotations['runai-mig-device'] = JSON.stringify({
        name: `nvidia.com/mig-${d.profile}`,
        position: d.instance,
        gpuamount: 1,
        gputype: p.node.gpuProduct,
        deviceUUID: migUuid(s, p.node.name, d.gpu, d.instance),
        gpuIndex: d.gpu,
        gpuUUID: gpuUuid(s, p.node.name, d.gpu),
      });
    }
  }
  return { labels, annotations, limits };
}

/** A pending delete as the API stores it: deletionTimestamp = the request's time + its grace period. */
export interface Deletion {
  atMs: number;
  gracePeriodSeconds: number;
}

function deletionMetadata(ctx: ObjectContext, deletion: Deletion | undefined) {
  if (!deletion) return {};
  return {
    deletionTimestamp: timestamp(ctx, deletion.atMs + deletion.gracePeriodSeconds * 1000),
    deletionGracePeriodSeconds: deletion.gracePeriodSeconds,
  };
}

export function podObject(ctx: ObjectContext, p: PodFacts, stage: Stage, deletion?: Deletion): K8sObject {
  const pod = p.pod;
  const scheduled = stage !== 'pending';
  const gpu = gpuMetadata(ctx, p, scheduled);
  const omit = (record: Record<string, string>) =>
    Object.fromEntries(Object.entries(record).filter(([k]) => !pod.omit.includes(k)));
  const labels = podLabels(pod, gpu.labels);
  const annotations = omit({
    user: pod.user,
    workloadId: p.workloadId,
    clusterId: ctx.model.scenario.clusterId,
    'pod-group-name': `pg-${pod.name}-${p.workloadId.slice(0, 8)}`,
    ...gpu.annotations,
    ...pod.annotations,
  });
  const requests: Record<string, string> = {};
  if (p.cpuCores > 0) requests.cpu = cpuQuantity(p.cpuCores);
  if (pod.memoryMiB > 0) requests.memory = `${pod.memoryMiB}Mi`;
  const image = 'nvcr.io/nvidia/pytorch:24.01-py3';
  const run = { start: p.runStart, end: Number.isFinite(p.runEnd) ? p.runEnd : p.runStart };
  const phase = stage === 'pending' ? 'Pending' : stage === 'running' ? 'Running' : pod.endPhase;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: pod.name,
      namespace: p.namespace,
      uid: p.uid,
      creationTimestamp: timestamp(ctx, p.createdMs),
      labels,
      annotations,
      ...deletionMetadata(ctx, deletion),
    },
    spec: {
      schedulerName: 'runai-scheduler',
      ...(scheduled ? { nodeName: p.node.name } : {}),
      ...(pod.priorityClassName ? { priorityClassName: pod.priorityClassName } : {}),
      restartPolicy: 'Never',
      containers: [
        {
          name: 'main',
          image,
          resources: { requests: { ...requests, ...gpu.limits }, limits: { ...requests, ...gpu.limits } },
        },
      ],
    },
    status: {
      phase,
      conditions: conditions(ctx, stage, p.createdMs, p.runStart),
      qosClass: 'Guaranteed',
      ...(scheduled
        ? {
            hostIP: nodeIp(ctx, p.node),
            podIP: `10.244.${ctx.model.scenario.nodes.indexOf(p.node)}.${(ctx.model.pods.indexOf(p) % 250) + 2}`,
            startTime: timestamp(ctx, p.runStart),
            containerStatuses: [containerStatus(ctx, 'main', image, stage, run, pod.endPhase === 'Failed')],
          }
        : {}),
    },
  };
}

export function reservationObject(
  ctx: ObjectContext,
  r: ReservationFacts,
  stage: 'running' | 'terminated',
): K8sObject {
  const image = 'gcr.io/run-ai-prod/resource-reservation:v2.19';
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: r.name,
      namespace: 'runai-reservation',
      uid: r.uid,
      creationTimestamp: timestamp(ctx, r.runStart),
      labels: { app: 'runai-reservation', 'runai-gpu-group': r.groupId },
      annotations: { 'run.ai/reserve_for_gpu_index': r.gpuUuid },
      ...deletionMetadata(
        ctx,
        stage === 'terminated' ? { atMs: r.runEnd, gracePeriodSeconds: 0 } : undefined,
      ),
    },
    spec: {
      schedulerName: 'runai-scheduler',
      nodeName: r.node.name,
      restartPolicy: 'Never',
      containers: [
        {
          name: 'runai-reservation',
          image,
          resources: { requests: { 'nvidia.com/gpu': '1' }, limits: { 'nvidia.com/gpu': '1' } },
        },
      ],
    },
    status: {
      phase: 'Running',
      hostIP: nodeIp(ctx, r.node),
      startTime: timestamp(ctx, r.runStart),
      containerStatuses: [
        containerStatus(ctx, 'runai-reservation', image, 'running', { start: r.runStart, end: r.runEnd }),
      ],
    },
  };
}
