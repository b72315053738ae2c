import { createHash } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { describeRunaiPod } from '@gpu-meter/kit/runai';
import type { MetricSegment, Scenario, ScenarioNode, ScenarioPod } from './scenario.js';

/**
 * Facts derived from a scenario that both the fakes and the ground truth use, so they cannot disagree:
 * identities (uids, GPU UUIDs), billing dimensions, allocation levels, running spans and reservation periods.
 * Times here are offsets from the scenario start; a pod that never ends has runEnd = Infinity.
 */
export const MIB = 2 ** 20;
export const MIG_SLICES = 7;

export type Device =
  | { kind: 'whole'; indices: number[] }
  | { kind: 'fraction'; gpu: number; fraction: number; memoryMiB: number; requestedBy: 'fraction' | 'memory' }
  | { kind: 'mig'; gpu: number; instance: number; profile: string };

export interface PodFacts {
  readonly pod: ScenarioPod;
  readonly node: ScenarioNode;
  readonly namespace: string;
  readonly uid: string;
  readonly queue: string;
  readonly workloadId: string;
  readonly workloadType: string;
  /** The project a collector attributes the pod to from its metadata ('' when it cannot). */
  readonly project: string;
  /** customers[project] ?? project; undefined when unattributable (the collector's fallback subject then). */
  readonly subject: string | undefined;
  readonly department: string;
  readonly gpuType: string;
  readonly device: Device | undefined;
  readonly gpus: number;
  readonly gpuMemoryBytes: number;
  readonly cpuCores: number;
  readonly memoryBytes: number;
  readonly createdMs: number;
  readonly runStart: number;
  readonly runEnd: number;
  /** runai-gpu-group of the reservation period this fractional pod belongs to. */
  gpuGroup?: string;
}

export interface ReservationFacts {
  readonly node: ScenarioNode;
  readonly gpu: number;
  readonly name: string;
  readonly uid: string;
  readonly groupId: string;
  readonly gpuUuid: string;
  readonly runStart: number;
  readonly runEnd: number;
  readonly sharers: PodFacts[];
}

/** A physical GPU, or one MIG instance of a MIG GPU: what DCGM reports a series for. */
export interface DeviceFacts {
  readonly node: ScenarioNode;
  readonly gpu: number;
  readonly gpuUuid: string;
  readonly migInstance?: number;
  readonly migProfile?: string;
  readonly migUuid?: string;
  readonly modelName: string;
  /** modelName normalised like nvidia.com/gpu.product (spaces to dashes). */
  readonly gpuType: string;
  readonly segments: readonly MetricSegment[];
}

export interface ClusterModel {
  readonly scenario: Scenario;
  readonly pods: readonly PodFacts[];
  readonly reservations: readonly ReservationFacts[];
  readonly devices: readonly DeviceFacts[];
}

export function uuidFrom(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  // Shaped like a v4 UUID so that parsers that check the format accept it.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export const podUid = (s: Scenario, namespace: string, name: string) =>
  uuidFrom(s.clusterId, 'pod', namespace, name);
export const gpuUuid = (s: Scenario, node: string, index: number) =>
  `GPU-${uuidFrom(s.clusterId, 'gpu', node, String(index))}`;
export const migUuid = (s: Scenario, node: string, gpu: number, instance: number) =>
  `MIG-${uuidFrom(s.clusterId, 'mig', node, String(gpu), String(instance))}`;

export function modelNameOf(node: ScenarioNode): string {
  return node.modelName ?? node.gpuProduct.replace('-', ' ');
}

export function migSlices(profile: string): { compute: number; memoryGb: number } {
  const m = /^(\d+)g\.(\d+)gb$/.exec(profile);
  if (!m) throw new Error(`bad MIG profile ${profile}`);
  return { compute: Number(m[1]), memoryGb: Number(m[2]) };
}

function deviceOf(pod: ScenarioPod, node: ScenarioNode): Device | undefined {
  const g = pod.gpu;
  if (!g) return undefined;
  if ('whole' in g) return { kind: 'whole', indices: [...g.whole] };
  if ('fraction' in g) {
    const memoryMiB = g.memoryMiB ?? Math.floor(g.fraction * node.gpuMemoryMiB);
    return { kind: 'fraction', gpu: g.gpu, fraction: g.fraction, memoryMiB, requestedBy: g.requestedBy };
  }
  const layout = node.mig.find((m) => m.gpu === g.mig.gpu)!;
  const profile = layout.instances.find((x) => x.id === g.mig.instance)!.profile;
  return { kind: 'mig', gpu: g.mig.gpu, instance: g.mig.instance, profile };
}

function levels(device: Device | undefined, node: ScenarioNode): { gpus: number; gpuMemoryBytes: number } {
  if (!device) return { gpus: 0, gpuMemoryBytes: 0 };
  if (device.kind === 'whole')
    return { gpus: device.indices.length, gpuMemoryBytes: device.indices.length * node.gpuMemoryMiB * MIB };
  if (device.kind === 'fraction') return { gpus: device.fraction, gpuMemoryBytes: device.memoryMiB * MIB };
  const { compute, memoryGb } = migSlices(device.profile);
  return { gpus: compute / MIG_SLICES, gpuMemoryBytes: memoryGb * 1024 * MIB };
}

/**
 * The labels the served pod carries (k8s-objects.ts renders exactly these): the scenario's fields, then the
 * scheduler's `scheduled` labels, then the extra `labels` (which win), less the `omit` keys.
 */
export function podLabels(pod: ScenarioPod, scheduled: Record<string, string> = {}): Record<string, string> {
  const labels: Record<string, string> = {
    project: pod.project,
    'runai/queue': pod.queue ?? pod.project,
    ...(pod.workloadKind ? { workloadKind: pod.workloadKind } : {}),
    ...scheduled,
    ...pod.labels,
  };
  for (const key of pod.omit) delete labels[key];
  return labels;
}

/**
 * Billing dimensions as a collector reads them off the served pod's metadata: the kit's pod model itself
 * (project from label, namespace or queue; workload kind from label or priority class; customer and
 * department maps), so the truth cannot drift from the collectors' contract in a second copy.
 */
function attribution(scenario: Scenario, pod: ScenarioPod, namespace: string) {
  const metadataOnly = {
    metadata: { namespace, labels: podLabels(pod) },
    spec: pod.priorityClassName ? { priorityClassName: pod.priorityClassName } : {},
  } as V1Pod;
  const seen = describeRunaiPod(metadataOnly, undefined, {
    clusterId: scenario.clusterId,
    projectDepartments: scenario.departments,
    projectCustomers: scenario.customers,
    fallbackSubject: '',
  });
  return {
    queue: seen.queue,
    project: seen.project,
    subject: seen.attributed ? seen.subject : undefined,
    department: seen.department,
    workloadType: seen.workloadType,
  };
}

export function buildModel(scenario: Scenario): ClusterModel {
  const nodes = new Map(scenario.nodes.map((n) => [n.name, n]));
  const pods: PodFacts[] = scenario.pods.map((pod) => {
    const node = nodes.get(pod.node)!;
    const namespace = pod.namespace ?? `runai-${pod.project}`;
    const device = deviceOf(pod, node);
    return {
      pod,
      node,
      namespace,
      uid: podUid(scenario, namespace, pod.name),
      workloadId: pod.workloadId ?? uuidFrom(scenario.clusterId, 'workload', namespace, pod.name),
      ...attribution(scenario, pod, namespace),
      gpuType: device ? node.gpuProduct : '',
      device,
      ...levels(device, node),
      cpuCores: pod.cpuCores,
      memoryBytes: pod.memoryMiB * MIB,
      createdMs: pod.createdMs ?? pod.startMs,
      runStart: pod.startMs,
      runEnd: pod.endMs ?? Number.POSITIVE_INFINITY,
    };
  });
  return { scenario, pods, reservations: reservationsOf(scenario, pods), devices: devicesOf(scenario) };
}

/** One reservation pod per maximal period in which a shared GPU has at least one running sharer. */
function reservationsOf(scenario: Scenario, pods: PodFacts[]): ReservationFacts[] {
  const byGpu = new Map<string, PodFacts[]>();
  for (const p of pods) {
    if (p.device?.kind !== 'fraction') continue;
    const key = `${p.node.name}\u0000${p.device.gpu}`;
    byGpu.set(key, [...(byGpu.get(key) ?? []), p]);
  }
  const out: ReservationFacts[] = [];
  for (const sharers of byGpu.values()) {
    const sorted = [...sharers].sort((a, b) => a.runStart - b.runStart);
    const node = sorted[0]!.node;
    const gpu = (sorted[0]!.device as { gpu: number }).gpu;
    let period: PodFacts[] = [];
    let end = Number.NEGATIVE_INFINITY;
    const flush = () => {
      if (period.length === 0) return;
      const n = out.filter((r) => r.node === node && r.gpu === gpu).length;
      const name = `runai-reservation-gpu-${node.name}-${gpu}-${n}`;
      const groupId = uuidFrom(scenario.clusterId, 'gpu-group', node.name, String(gpu), String(n));
      for (const p of period) p.gpuGroup = groupId;
      out.push({
        node,
        gpu,
        name,
        uid: podUid(scenario, 'runai-reservation', name),
        groupId,
        gpuUuid: gpuUuid(scenario, node.name, gpu),
        runStart: period[0]!.runStart,
        runEnd: end,
        sharers: period,
      });
    };
    for (const p of sorted) {
      if (p.runStart >= end) {
        flush();
        period = [];
      }
      period.push(p);
      end = Math.max(end, p.runEnd);
    }
    flush();
  }
  return out;
}

function devicesOf(scenario: Scenario): DeviceFacts[] {
  const out: DeviceFacts[] = [];
  const segmentsFor = (node: string, gpu: number, migInstance?: number) =>
    scenario.gpuMetrics.find((m) => m.node === node && m.gpu === gpu && m.migInstance === migInstance)
      ?.segments ?? [];
  for (const node of scenario.nodes) {
    const modelName = modelNameOf(node);
    const base = { node, modelName, gpuType: modelName.replace(/ /g, '-') };
    for (let gpu = 0; gpu < node.gpuCount; gpu++) {
      const uuid = gpuUuid(scenario, node.name, gpu);
      const layout = node.mig.find((m) => m.gpu === gpu);
      if (!layout) {
        out.push({ ...base, gpu, gpuUuid: uuid, segments: segmentsFor(node.name, gpu) });
        continue;
      }
      for (const inst of layout.instances) {
        out.push({
          ...base,
          gpu,
          gpuUuid: uuid,
          migInstance: inst.id,
          migProfile: inst.profile,
          migUuid: migUuid(scenario, node.name, gpu, inst.id),
          segments: segmentsFor(node.name, gpu, inst.id),
        });
      }
    }
  }
  return out;
}

/** The segment in effect at offset t (segments hold until the next one starts; zeros before the first). */
export function segmentAt(segments: readonly MetricSegment[], t: number): MetricSegment {
  let current: MetricSegment = ZERO_SEGMENT;
  for (const s of segments) if (s.fromMs <= t) current = s;
  return current;
}

export const ZERO_SEGMENT: MetricSegment = Object.freeze({
  fromMs: 0,
  nvlinkTxBytesPerSec: 0,
  nvlinkRxBytesPerSec: 0,
  pcieTxBytesPerSec: 0,
  pcieRxBytesPerSec: 0,
  fbUsedMiB: 0,
});

/** Pods (with their share) holding a device during offset t: exclusive holder, or fractional sharers. */
export function holdersAt(
  model: ClusterModel,
  device: DeviceFacts,
  t: number,
): { pod: PodFacts; share: number }[] {
  const running = model.pods.filter((p) => p.node === device.node && p.runStart <= t && t < p.runEnd);
  const out: { pod: PodFacts; share: number }[] = [];
  for (const p of running) {
    const d = p.device;
    if (!d) continue;
    if (device.migInstance !== undefined) {
      if (d.kind === 'mig' && d.gpu === device.gpu && d.instance === device.migInstance)
        out.push({ pod: p, share: 1 });
    } else if (d.kind === 'whole' && d.indices.includes(device.gpu)) out.push({ pod: p, share: 1 });
    else if (d.kind === 'fraction' && d.gpu === device.gpu) out.push({ pod: p, share: d.fraction });
  }
  const sum = out.reduce((acc, h) => acc + h.share, 0);
  return out.map((h) => ({ pod: h.pod, share: h.pod.device?.kind === 'fraction' ? h.share / sum : 1 }));
}

/** The pod DCGM names for a device at offset t: the exclusive holder, or the reservation pod of a shared GPU. */
export function dcgmPodAt(
  model: ClusterModel,
  device: DeviceFacts,
  t: number,
): { name: string; namespace: string; container: string } | undefined {
  const holders = holdersAt(model, device, t);
  const first = holders[0];
  if (!first) return undefined;
  if (first.pod.device?.kind !== 'fraction')
    return { name: first.pod.pod.name, namespace: first.pod.namespace, container: 'main' };
  const r = model.reservations.find(
    (x) => x.node === device.node && x.gpu === device.gpu && x.runStart <= t && t < x.runEnd,
  );
  return r ? { name: r.name, namespace: 'runai-reservation', container: 'runai-reservation' } : undefined;
}
