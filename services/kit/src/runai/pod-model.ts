import type { V1Container, V1Node, V1Pod } from '@kubernetes/client-node';
import { parseBytes, parseDecimal, parseQuantity, QuantityError } from './quantity.js';

/**
 * What a Run:ai pod holds and who pays for it, read from the labels and annotations a real Run:ai cluster
 * puts on pods (docs/DESIGN.md §2). Pure: a pod (as the informer hands it over, times as Date or RFC 3339
 * strings), its node, and the configured maps in; a plain value out. Annotations are the tenant's to write,
 * so amounts read from them are plain decimals, never below the container limits and never above the node's
 * capacity (docs/DESIGN.md §6.7); whatever is not billed as written is listed in `inputIssues`.
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
  /**
   * The cluster's id (CLUSTER_ID), in every sample id and key. Never a pod's own `clusterId` annotation: a
   * tenant can write that, and an edited or oversized one would re-id (so double-bill) or dead-letter its samples.
   */
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
  /** Tenant-written inputs not billed as written, and why (empty for a consistent pod). */
  readonly inputIssues: readonly InputIssue[];
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

/**
 * Why a tenant-written input was not billed as written (docs/DESIGN.md §6.7). Container limits are enforced by the
 * device plugin and node capacity by the kubelet; annotations are whatever the tenant wrote.
 */
export type InputIssueReason =
  /** Not a plain decimal amount ("abc", "0x10", "1e17", " 1 "): the next source is billed instead. */
  | 'malformed'
  /** Less than the container limits hold: the limits are billed. */
  | 'below-limit'
  /** More MIG instances than the container limits hold: capped at them. */
  | 'above-limit'
  /** More than the node has: capped at the node. */
  | 'above-node-capacity'
  /** MIG annotations on a pod whose limits hold whole GPUs, or naming another GPU than the node's: ignored. */
  | 'conflicts-with-limits'
  /** Above what the limits alone bill, on a node that is not in the cache: billed, but unchecked. */
  | 'node-capacity-unknown';

export interface InputIssue {
  /** The annotation, or `requests.cpu` / `requests.memory`. */
  readonly input: string;
  readonly reason: InputIssueReason;
  /** What was written and what is billed instead, for the log line. */
  readonly detail: string;
}

/** An annotation's amount, with where it came from. */
interface Annotated {
  readonly input: string;
  readonly text: string;
  readonly value: number;
}

/** The node's allocatable (else capacity) amount of a resource; undefined if it states none. */
function nodeAmount(node: V1Node | undefined, resource: string): number | undefined {
  for (const amounts of [node?.status?.allocatable, node?.status?.capacity]) {
    const text = amounts?.[resource];
    if (text === undefined) continue;
    const value = quantityOrUndefined(text);
    if (value !== undefined && value >= 0) return value;
  }
  return undefined;
}

/** A node whose status lists its resources: a resource missing there is one it does not have. */
function statesResources(node: V1Node | undefined): boolean {
  return node?.status?.allocatable !== undefined || node?.status?.capacity !== undefined;
}

/**
 * GPUs a pod on this node can hold: the device plugin's allocatable (else capacity) nvidia.com/gpu, else GPU
 * feature discovery's nvidia.com/gpu.count label; 0 for a node that lists its resources without GPUs;
 * undefined when nothing is known (no node).
 */
export function nodeGpuCapacity(node: V1Node | undefined): number | undefined {
  return (
    nodeAmount(node, 'nvidia.com/gpu') ??
    parseDecimal(node?.metadata?.labels?.['nvidia.com/gpu.count'] ?? '') ??
    (statesResources(node) ? 0 : undefined)
  );
}

/** Physical GPUs on the node, MIG-partitioned ones included (allocatable nvidia.com/gpu leaves those out). */
function nodeGpuDevices(node: V1Node | undefined): number | undefined {
  const counted = parseDecimal(node?.metadata?.labels?.['nvidia.com/gpu.count'] ?? '');
  const allocatable = nodeGpuCapacity(node);
  return counted === undefined ? allocatable : Math.max(counted, allocatable ?? 0);
}

function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

/** The first of `inputs` holding a plain decimal amount; each malformed one before it is reported. */
function annotatedAmount(
  annotations: Readonly<Record<string, string>>,
  inputs: readonly string[],
  issues: InputIssue[],
): Annotated | undefined {
  for (const input of inputs) {
    const text = annotations[input];
    if (text === undefined || text === '') continue;
    const value = parseDecimal(text);
    if (value !== undefined) return { input, text, value };
    issues.push({ input, reason: 'malformed', detail: `${quote(text)} is not a decimal amount` });
  }
  return undefined;
}

/**
 * `value` (from annotation `from`) held between what the limits bill (`floor`) and the node (`ceiling`).
 * Unknown ceiling: kept, but reported when above the floor, as nothing the tenant cannot write vouches for it.
 */
function bounded(
  from: Annotated,
  value: number,
  floor: number,
  ceiling: number | undefined,
  issues: InputIssue[],
  overCeiling: InputIssueReason = 'above-node-capacity',
): number {
  let billed = value;
  if (billed < floor) {
    issues.push({
      input: from.input,
      reason: 'below-limit',
      detail: `${quote(from.text)}: the limits' ${floor} is billed`,
    });
    billed = floor;
  }
  if (ceiling !== undefined && billed > ceiling) {
    issues.push({
      input: from.input,
      reason: overCeiling,
      detail: `${quote(from.text)}: capped at ${ceiling}`,
    });
    billed = ceiling;
  } else if (ceiling === undefined && billed > floor) {
    issues.push({
      input: from.input,
      reason: 'node-capacity-unknown',
      detail: `${quote(from.text)}: the node's capacity is unknown, billed unchecked`,
    });
  }
  return billed;
}

function gpuAllocationOf(pod: V1Pod, node: V1Node | undefined, issues: InputIssue[]): GpuAllocation {
  const annotations = pod.metadata?.annotations ?? {};
  const nodeLabels = node?.metadata?.labels ?? {};
  const nodeGpuType = nodeLabels['nvidia.com/gpu.product'] ?? '';
  const limits = containerLimitTotals(pod);
  const devices = nodeGpuDevices(node);
  const deviceBytes = bytesOfMib(parseDecimal(nodeLabels['nvidia.com/gpu.memory'] ?? ''));
  // All the GPU memory the node has; 0 on a node without GPUs whatever its labels say.
  const nodeMemoryBytes =
    devices === 0
      ? 0
      : deviceBytes === undefined || devices === undefined
        ? undefined
        : Math.min(deviceBytes * devices, Number.MAX_SAFE_INTEGER);
  const memory = annotatedAmount(annotations, ['runai-allocated-gpu-memory', 'gpu-memory'], issues);
  const memoryBytes = (floor: number): number | undefined => {
    if (!memory) return undefined;
    // An amount no Avro long holds is over any node's memory.
    const bytes = bytesOfMib(memory.value) ?? Number.MAX_SAFE_INTEGER;
    return bounded(memory, bytes, floor, nodeMemoryBytes, issues);
  };

  const migText = annotations['runai-allocated-mig-gpus'];
  const mig = migDeviceOf(pod);
  const migAnnotated = (migText !== undefined && migText !== '') || mig !== undefined;
  if (migAnnotated && limits.gpus !== undefined && limits.gpus > 0) {
    // Whole GPUs the device plugin handed out are a fact; MIG annotations beside them would lower the bill.
    for (const input of ['runai-allocated-mig-gpus', 'runai-mig-device'])
      if (annotations[input] !== undefined && annotations[input] !== '')
        issues.push({
          input,
          reason: 'conflicts-with-limits',
          detail: `ignored: the container limits hold ${limits.gpus} whole GPUs`,
        });
  } else if (migAnnotated) {
    const count = annotatedAmount(annotations, ['runai-allocated-mig-gpus'], issues);
    // Each MIG instance is at most one GPU: the instances the limits hold, else the node's GPUs, bound it.
    const ceiling = limits.migSlices ?? devices;
    const overCeiling = limits.migSlices === undefined ? 'above-node-capacity' : 'above-limit';
    const gpus = count
      ? bounded(count, count.value, 0, ceiling, issues, overCeiling)
      : Math.min(limits.migSlices ?? 1, devices ?? Infinity);
    let gpuType = nodeGpuType;
    if (mig?.gpuType !== undefined) {
      if (nodeGpuType === '' || mig.gpuType.startsWith(nodeGpuType)) gpuType = mig.gpuType;
      else
        issues.push({
          input: 'runai-mig-device',
          reason: 'conflicts-with-limits',
          detail: `gputype ${quote(mig.gpuType)} is not a ${nodeGpuType}: the node's type is billed`,
        });
    }
    return {
      gpus,
      gpuMemoryBytes: memoryBytes(0) ?? 0,
      gpuType,
      migProfile: mig?.profile ?? limits.migProfile ?? null,
    };
  }

  const fraction = annotatedAmount(annotations, ['runai-allocated-gpus', 'gpu-fraction'], issues);
  const limitGpus = limits.gpus ?? 0;
  const capacity = nodeGpuCapacity(node);
  let gpus: number;
  let migProfile: string | null = null;
  if (fraction) gpus = bounded(fraction, fraction.value, limitGpus, capacity, issues);
  else {
    gpus = limits.gpus ?? limits.migSlices ?? 0;
    if (limits.gpus === undefined) migProfile = limits.migProfile ?? null;
  }
  // Whole GPUs hold the whole device memory when GPU feature discovery tells it.
  const whole = (count: number) =>
    migProfile === null && Number.isInteger(count) && count > 0 && deviceBytes !== undefined
      ? safeOrZero(deviceBytes * count)
      : 0;
  const gpuMemoryBytes = memoryBytes(whole(limitGpus)) ?? whole(gpus);
  return { gpus, gpuMemoryBytes, gpuType: gpus > 0 ? nodeGpuType : '', migProfile };
}

function safeOrZero(bytes: number): number {
  return Number.isSafeInteger(bytes) ? bytes : 0;
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

/** A pod cannot hold more than its node has: the kubelet refuses it. Reported, as only a bad object says so. */
function cappedRequest(
  resource: 'cpu' | 'memory',
  value: number,
  node: V1Node | undefined,
  issues: InputIssue[],
): number {
  const ceiling = nodeAmount(node, resource);
  if (ceiling === undefined || value <= ceiling) return value;
  issues.push({
    input: `requests.${resource}`,
    reason: 'above-node-capacity',
    detail: `${value} is more than the node's ${ceiling}: capped`,
  });
  return resource === 'memory' ? Math.ceil(ceiling) : ceiling;
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
  const inputIssues: InputIssue[] = [];
  const gpu = gpuAllocationOf(pod, node, inputIssues);
  const cpuCores = cappedRequest('cpu', requestOf(pod, 'cpu', parseQuantity), node, inputIssues);
  const memoryBytes = cappedRequest('memory', requestOf(pod, 'memory', parseBytes), node, inputIssues);
  return {
    uid: metadata.uid ?? '',
    name: metadata.name ?? '',
    namespace: metadata.namespace ?? '',
    nodeName: pod.spec?.nodeName ?? '',
    clusterId: attribution.clusterId,
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
    cpuCores,
    memoryBytes,
    gpuGroup: nonEmpty(labels['runai-gpu-group']),
    span: runningSpanOf(pod),
    inputIssues,
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

/** A node's resource amount; a malformed one states nothing. */
function quantityOrUndefined(text: string): number | undefined {
  try {
    return parseQuantity(text);
  } catch (error) {
    if (error instanceof QuantityError) return undefined;
    throw error;
  }
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text === '' ? undefined : text;
}
