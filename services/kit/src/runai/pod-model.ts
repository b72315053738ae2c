import type { V1Container, V1Node, V1Pod } from '@kubernetes/client-node';
import { parseBytes, parseQuantity } from './quantity.js';

/**
 * What a Run:ai pod holds and who pays for it, read from the labels and annotations a real Run:ai cluster
 * puts on pods (DESIGN.md §2). Pure: a pod (as the informer hands it over, times as Date or RFC 3339
 * strings), its node, and the configured maps in; a plain value out.
 */
export const RUNAI_SCHEDULER = 'runai-scheduler';
export const RESERVATION_NAMESPACE = 'runai-reservation';
export const UNKNOWN_WORKLOAD = 'Unknown';
const MIB = 2 ** 20;

export const WORKLOAD_KINDS = ['Training', 'Interactive', 'Inference', 'DistributedWorkload'] as const;

/** PodGroup priority classes Run:ai creates, and the workload type each stands for. */
const PRIORITY_CLASS_WORKLOAD: Record<string, string> = {
  train: 'Training',
  build: 'Interactive',
  'interactive-preemptible': 'Interactive',
  inference: 'Inference',
};

export interface Attribution {
  /** Cluster id used when the pod has no `clusterId` annotation. */
  readonly clusterId: string;
  readonly projectDepartments: Readonly<Record<string, string>>;
  readonly projectCustomers: Readonly<Record<string, string>>;
  /** Subject billed for a pod whose project cannot be found. */
  readonly fallbackSubject: string;
}

/** [startMs, endMs) the pod held its resources; endMs null while it is still running. */
export interface RunningSpan {
  readonly startMs: number;
  readonly endMs: number | null;
}

export interface RunaiPod {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly nodeName: string;
  readonly clusterId: string;
  /** '' when no project could be found; `attributed` is then false and the subject is the fallback. */
  readonly project: string;
  readonly attributed: boolean;
  readonly subject: string;
  readonly department: string;
  readonly queue: string;
  readonly workloadType: string;
  readonly user: string;
  readonly workloadId: string;
  readonly gpus: number;
  readonly gpuMemoryBytes: number;
  readonly gpuType: string;
  readonly migProfile: string | null;
  readonly cpuCores: number;
  readonly memoryBytes: number;
  /** Label runai-gpu-group: ties a fractional pod to the reservation pod holding its GPU. */
  readonly gpuGroup: string | undefined;
  /** undefined until the pod has started. */
  readonly span: RunningSpan | undefined;
}

export function isRunaiPod(pod: V1Pod): boolean {
  return pod.spec?.schedulerName === RUNAI_SCHEDULER;
}

export function isReservationPod(pod: V1Pod): boolean {
  return (
    pod.metadata?.namespace === RESERVATION_NAMESPACE || pod.metadata?.labels?.app === 'runai-reservation'
  );
}

/** A pod billed for allocation: scheduled by Run:ai and not a reservation pod (whose GPU its sharers pay). */
export function isBillablePod(pod: V1Pod): boolean {
  return isRunaiPod(pod) && !isReservationPod(pod);
}

export function projectOf(pod: V1Pod): string | undefined {
  const labels = pod.metadata?.labels ?? {};
  const fromLabel = nonEmpty(labels.project);
  if (fromLabel) return fromLabel;
  const namespace = pod.metadata?.namespace ?? '';
  if (namespace.startsWith('runai-') && namespace !== RESERVATION_NAMESPACE) {
    const fromNamespace = nonEmpty(namespace.slice('runai-'.length));
    if (fromNamespace) return fromNamespace;
  }
  return nonEmpty(labels['runai/queue']);
}

export function workloadTypeOf(pod: V1Pod): string {
  const kind = pod.metadata?.labels?.workloadKind;
  if (kind && (WORKLOAD_KINDS as readonly string[]).includes(kind)) return kind;
  const priorityClass = pod.spec?.priorityClassName;
  return (priorityClass && PRIORITY_CLASS_WORKLOAD[priorityClass]) || UNKNOWN_WORKLOAD;
}

export function subjectOf(project: string | undefined, attribution: Attribution): string {
  if (project === undefined) return attribution.fallbackSubject;
  // Own keys only: a project named "constructor" must not bill Object.prototype.constructor.
  return Object.hasOwn(attribution.projectCustomers, project)
    ? attribution.projectCustomers[project]!
    : project;
}

export interface MigDevice {
  readonly profile: string | undefined;
  readonly gpuType: string | undefined;
  readonly deviceUuid: string | undefined;
}

/** The JSON annotation runai-mig-device; field spellings vary between Run:ai versions, so accept both. */
export function migDeviceOf(pod: V1Pod): MigDevice | undefined {
  const text = pod.metadata?.annotations?.['runai-mig-device'];
  if (!text) return undefined;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const text_ = (key: string): string | undefined => {
    const value = parsed[key];
    return typeof value === 'string' && value !== '' ? value : undefined;
  };
  const name = text_('name') ?? text_('profile') ?? text_('migProfile');
  return {
    profile: name?.replace(/^nvidia\.com\/mig-/, ''),
    gpuType: text_('gputype') ?? text_('gpuType'),
    deviceUuid: text_('deviceUUID') ?? text_('deviceUuid') ?? text_('uuid'),
  };
}

interface GpuAllocation {
  gpus: number;
  gpuMemoryBytes: number;
  gpuType: string;
  migProfile: string | null;
}

function gpuAllocationOf(pod: V1Pod, node: V1Node | undefined): GpuAllocation {
  const annotations = pod.metadata?.annotations ?? {};
  const nodeLabels = node?.metadata?.labels ?? {};
  const nodeGpuType = nodeLabels['nvidia.com/gpu.product'] ?? '';
  const explicitMemoryBytes = bytesOfMib(
    numberOr(annotations['runai-allocated-gpu-memory'] ?? annotations['gpu-memory']),
  );

  const migCount = numberOr(annotations['runai-allocated-mig-gpus']);
  const mig = migDeviceOf(pod);
  if (migCount !== undefined || mig !== undefined) {
    const limits = containerLimitTotals(pod);
    return {
      gpus: migCount ?? limits.migSlices ?? 1,
      gpuMemoryBytes: explicitMemoryBytes ?? 0,
      gpuType: mig?.gpuType ?? nodeGpuType,
      migProfile: mig?.profile ?? limits.migProfile ?? null,
    };
  }

  const fraction = numberOr(annotations['runai-allocated-gpus'] ?? annotations['gpu-fraction']);
  const limits = containerLimitTotals(pod);
  const gpus = fraction ?? limits.gpus ?? limits.migSlices ?? 0;
  const migProfile = fraction === undefined && limits.gpus === undefined ? (limits.migProfile ?? null) : null;
  let gpuMemoryBytes = 0;
  if (explicitMemoryBytes !== undefined) gpuMemoryBytes = explicitMemoryBytes;
  else if (migProfile === null && Number.isInteger(gpus) && gpus > 0) {
    // Whole GPUs hold the whole device memory when GPU feature discovery tells it.
    const deviceBytes = bytesOfMib(numberOr(nodeLabels['nvidia.com/gpu.memory']));
    if (deviceBytes !== undefined && Number.isSafeInteger(deviceBytes * gpus))
      gpuMemoryBytes = deviceBytes * gpus;
  }
  return { gpus, gpuMemoryBytes, gpuType: gpus > 0 ? nodeGpuType : '', migProfile };
}

interface LimitTotals {
  gpus: number | undefined;
  migSlices: number | undefined;
  migProfile: string | undefined;
}

function containerLimitTotals(pod: V1Pod): LimitTotals {
  let gpus: number | undefined;
  let migSlices: number | undefined;
  let migProfile: string | undefined;
  for (const container of pod.spec?.containers ?? []) {
    for (const [resource, value] of Object.entries(container.resources?.limits ?? {})) {
      if (resource === 'nvidia.com/gpu') gpus = (gpus ?? 0) + parseQuantity(value);
      const mig = /^nvidia\.com\/mig-(.+)$/.exec(resource);
      if (mig) {
        migSlices = (migSlices ?? 0) + parseQuantity(value);
        migProfile ??= mig[1];
      }
    }
  }
  return { gpus, migSlices, migProfile };
}

/**
 * Effective requests, as the scheduler sees them: the sum over app containers, or the largest init
 * container when that is more (init containers run one at a time before the app containers).
 */
function requestOf(pod: V1Pod, resource: 'cpu' | 'memory', parse: (text: string) => number): number {
  const of = (container: V1Container) => {
    const value = container.resources?.requests?.[resource];
    return value === undefined ? 0 : parse(String(value));
  };
  const app = (pod.spec?.containers ?? []).reduce((sum, container) => sum + of(container), 0);
  const init = Math.max(0, ...(pod.spec?.initContainers ?? []).map(of));
  return Math.max(app, init);
}

export function runningSpanOf(pod: V1Pod): RunningSpan | undefined {
  const status = pod.status;
  const statuses = [...(status?.initContainerStatuses ?? []), ...(status?.containerStatuses ?? [])];
  let startMs = toMs(status?.startTime);
  if (startMs === undefined) {
    const started = statuses
      .map((s) => toMs(s.state?.running?.startedAt) ?? toMs(s.state?.terminated?.startedAt))
      .filter((ms): ms is number => ms !== undefined);
    if (started.length > 0) startMs = Math.min(...started);
  }
  if (startMs === undefined) return undefined;
  if (status?.phase !== 'Succeeded' && status?.phase !== 'Failed') return { startMs, endMs: null };
  let finished = (status.containerStatuses ?? [])
    .map((s) => toMs(s.state?.terminated?.finishedAt))
    .filter((ms): ms is number => ms !== undefined);
  // No container finish time (e.g. some evictions): the last condition change is when the pod stopped.
  if (finished.length === 0) {
    finished = (status.conditions ?? [])
      .map((c) => toMs(c.lastTransitionTime))
      .filter((ms): ms is number => ms !== undefined);
  }
  // Nothing at all: its start is the only safe bound (bills nothing more).
  const endMs = finished.length > 0 ? Math.max(...finished) : startMs;
  return { startMs, endMs: Math.max(startMs, endMs) };
}

export function describeRunaiPod(pod: V1Pod, node: V1Node | undefined, attribution: Attribution): RunaiPod {
  const metadata = pod.metadata ?? {};
  const labels = metadata.labels ?? {};
  const annotations = metadata.annotations ?? {};
  const project = projectOf(pod);
  const gpu = gpuAllocationOf(pod, node);
  return {
    uid: metadata.uid ?? '',
    name: metadata.name ?? '',
    namespace: metadata.namespace ?? '',
    nodeName: pod.spec?.nodeName ?? '',
    clusterId: nonEmpty(annotations.clusterId) ?? attribution.clusterId,
    project: project ?? '',
    attributed: project !== undefined,
    subject: subjectOf(project, attribution),
    department:
      (project !== undefined &&
        Object.hasOwn(attribution.projectDepartments, project) &&
        attribution.projectDepartments[project]) ||
      '',
    queue: labels['runai/queue'] ?? '',
    workloadType: workloadTypeOf(pod),
    user: annotations.user ?? '',
    workloadId: annotations.workloadId ?? '',
    ...gpu,
    cpuCores: requestOf(pod, 'cpu', parseQuantity),
    memoryBytes: requestOf(pod, 'memory', parseBytes),
    gpuGroup: nonEmpty(labels['runai-gpu-group']),
    span: runningSpanOf(pod),
  };
}

/** Epoch ms from what the client hands over: a Date (from a list) or an RFC 3339 string (from a watch). */
export function toMs(value: Date | string | undefined | null): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/** MiB → bytes; an amount no Avro long holds (a garbage annotation like "1e308") counts as unknown. */
function bytesOfMib(mib: number | undefined): number | undefined {
  const bytes = mib === undefined ? undefined : Math.round(mib * MIB);
  return bytes !== undefined && Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** An annotation's amount; a negative one (a hand edit, a bug) is as unusable as "abc". */
function numberOr(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) && value >= 0 ? value : undefined;
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text === '' ? undefined : text;
}
