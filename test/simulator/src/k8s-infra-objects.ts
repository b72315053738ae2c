import { podUid } from './model.js';
import type { ScenarioNode } from './scenario.js';
import {
  containerStatus,
  cpuQuantity,
  nodeIp,
  timestamp,
  type K8sObject,
  type ObjectContext,
} from './k8s-objects.js';

/** Cluster infrastructure objects: GPU nodes as GPU feature discovery labels them, and the DCGM exporter pods. */
export function exporterObject(ctx: ObjectContext, node: ScenarioNode): K8sObject {
  const image = 'nvcr.io/nvidia/k8s/dcgm-exporter:3.3.5-3.4.1-ubuntu22.04';
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `nvidia-dcgm-exporter-${node.name}`,
      namespace: 'gpu-operator',
      uid: podUid(ctx.model.scenario, 'gpu-operator', `nvidia-dcgm-exporter-${node.name}`),
      creationTimestamp: timestamp(ctx, 0),
      labels: { app: 'nvidia-dcgm-exporter' },
      annotations: {
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': String(ctx.dcgmPort),
        'prometheus.io/path': `/metrics/${node.name}`,
      },
    },
    spec: {
      schedulerName: 'default-scheduler',
      nodeName: node.name,
      containers: [
        {
          name: 'nvidia-dcgm-exporter',
          image,
          ports: [{ name: 'metrics', containerPort: ctx.dcgmPort, protocol: 'TCP' }],
        },
      ],
    },
    status: {
      phase: 'Running',
      hostIP: ctx.dcgmHost,
      podIP: ctx.dcgmHost,
      startTime: timestamp(ctx, 0),
      containerStatuses: [
        containerStatus(ctx, 'nvidia-dcgm-exporter', image, 'running', { start: 0, end: 0 }),
      ],
    },
  };
}

export function nodeObject(ctx: ObjectContext, node: ScenarioNode): K8sObject {
  const wholeGpus = node.gpuCount - node.mig.length;
  const capacity: Record<string, string> = {
    cpu: cpuQuantity(node.cpuCores),
    memory: `${node.memoryMiB}Mi`,
    pods: '110',
  };
  if (node.gpuCount > 0) capacity['nvidia.com/gpu'] = String(wholeGpus);
  for (const layout of node.mig) {
    for (const inst of layout.instances) {
      const key = `nvidia.com/mig-${inst.profile}`;
      capacity[key] = String(Number(capacity[key] ?? 0) + 1);
    }
  }
  const labels: Record<string, string> = {
    'kubernetes.io/hostname': node.name,
    'kubernetes.io/os': 'linux',
    'nvidia.com/gpu.product': node.gpuProduct,
    'nvidia.com/gpu.count': String(node.gpuCount),
    'nvidia.com/gpu.memory': String(node.gpuMemoryMiB),
    'nvidia.com/gpu.present': 'true',
  };
  if (node.mig.length > 0) {
    labels['nvidia.com/mig.config.state'] = 'success';
    labels['nvidia.com/mig.strategy'] = 'mixed';
  }
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: node.name,
      uid: podUid(ctx.model.scenario, '', `node/${node.name}`),
      creationTimestamp: timestamp(ctx, 0),
      labels,
      annotations: {},
    },
    spec: { podCIDR: `10.244.${ctx.model.scenario.nodes.indexOf(node)}.0/24` },
    status: {
      capacity,
      allocatable: capacity,
      conditions: [
        { type: 'Ready', status: 'True', reason: 'KubeletReady', lastTransitionTime: timestamp(ctx, 0) },
      ],
      addresses: [
        { type: 'InternalIP', address: nodeIp(ctx, node) },
        { type: 'Hostname', address: node.name },
      ],
      nodeInfo: {
        kubeletVersion: 'v1.30.4',
        containerRuntimeVersion: 'containerd://1.7.20',
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
    },
  };
}
