import type { V1Node } from '@kubernetes/client-node';
import type { BandwidthSample } from '@gpu-meter/kit/contracts';
import {
  GPU_GROUP_LABEL,
  UNALLOCATED_SUBJECT,
  bandwidthSampleId,
  describeTracked,
  isBillablePod,
  isReservationPod,
  type Attribution,
  type RunaiPod,
  type TrackedPod,
} from '@gpu-meter/kit/runai';
import type { DeviceReading, PodRef } from './dcgm.js';

const MIB = 2 ** 20;

/** Pods by namespace/name and by runai-gpu-group, built once per tick from the pod store. */
export class PodIndex {
  private readonly byName = new Map<string, TrackedPod[]>();
  private readonly byGroup = new Map<string, TrackedPod[]>();

  constructor(tracked: readonly TrackedPod[]) {
    for (const entry of tracked) {
      const meta = entry.pod.metadata ?? {};
      push(this.byName, `${meta.namespace ?? ''}/${meta.name ?? ''}`, entry);
      const group = meta.labels?.[GPU_GROUP_LABEL];
      if (group && isBillablePod(entry.pod)) push(this.byGroup, group, entry);
    }
  }

  named(ref: PodRef): TrackedPod[] {
    return this.byName.get(`${ref.namespace}/${ref.name}`) ?? [];
  }

  group(group: string): TrackedPod[] {
    return this.byGroup.get(group) ?? [];
  }
}

interface Holder {
  readonly pod: RunaiPod;
  /** Fractional sharers split the device by fraction; an exclusive holder takes it whole. */
  readonly fraction: number | undefined;
}

/**
 * The pods that may have held a device during the interval: those the exporter named at this scrape and
 * at the previous one (a pod that ended mid-interval is no longer named), with a reservation pod replaced
 * by the fractional pods of its runai-gpu-group.
 */
export function candidateHolders(
  named: readonly (PodRef | undefined)[],
  index: PodIndex,
  nodes: ReadonlyMap<string, V1Node>,
  attribution: Attribution,
): Holder[] {
  const holders = new Map<string, Holder>();
  const add = (entry: TrackedPod, fractional: boolean) => {
    const pod = describeTracked(entry, nodes, attribution);
    if (!pod.uid || holders.has(pod.uid)) return;
    holders.set(pod.uid, { pod, fraction: fractional ? pod.gpus : undefined });
  };
  for (const ref of named) {
    if (!ref) continue;
    for (const entry of index.named(ref)) {
      if (isReservationPod(entry.pod)) {
        const group = entry.pod.metadata?.labels?.[GPU_GROUP_LABEL];
        if (group) for (const sharer of index.group(group)) add(sharer, true);
      } else {
        add(entry, false);
      }
    }
  }
  return [...holders.values()].sort((a, b) => (a.pod.uid < b.pod.uid ? -1 : a.pod.uid > b.pod.uid ? 1 : 0));
}

interface Stretch {
  readonly from: number;
  readonly to: number;
  readonly share: number;
}

/**
 * Splits [t - interval, t) at every holder start/end; each stretch goes to the holders running in it
 * (sharers by fraction / sum of the running sharers' fractions), else to `unallocated`. Returns the
 * stretches per holder uid ('' = unallocated).
 */
export function splitInterval(
  holders: readonly Holder[],
  t: number,
  intervalMs: number,
): Map<string, Stretch[]> {
  const start = t - intervalMs;
  const cuts = new Set([start, t]);
  for (const { pod } of holders) {
    if (!pod.span) continue;
    for (const edge of [pod.span.startMs, pod.span.endMs ?? Infinity])
      if (edge > start && edge < t) cuts.add(edge);
  }
  const edges = [...cuts].sort((a, b) => a - b);
  const out = new Map<string, Stretch[]>();
  for (let k = 0; k + 1 < edges.length; k += 1) {
    const from = edges[k]!;
    const to = edges[k + 1]!;
    const running = holders.filter(
      ({ pod }) => pod.span && pod.span.startMs <= from && (pod.span.endMs === null || from < pod.span.endMs),
    );
    const sharers = running.filter((h) => h.fraction !== undefined && h.fraction > 0);
    const exclusive = running.filter((h) => h.fraction === undefined);
    const total = sharers.reduce((sum, h) => sum + h.fraction!, 0);
    const shares: Array<[string, number]> = [
      ...exclusive.map((h): [string, number] => [h.pod.uid, 1 / exclusive.length]),
      ...(exclusive.length === 0
        ? sharers.map((h): [string, number] => [h.pod.uid, h.fraction! / total])
        : []),
    ];
    if (shares.length === 0) shares.push(['', 1]);
    for (const [uid, share] of shares) {
      const list = out.get(uid) ?? [];
      list.push({ from, to, share });
      out.set(uid, list);
    }
  }
  return out;
}

export interface DeviceContext {
  readonly clusterId: string;
  readonly intervalMs: number;
  /** This collector process (BandwidthSample.observer): lets the aggregator keep one replica's view. */
  readonly observer: string;
}

/** One sample per holder of the device (and one `unallocated` for unheld time) at grid point t. */
export function attributeDevice(
  reading: DeviceReading,
  holders: readonly Holder[],
  t: number,
  context: DeviceContext,
): BandwidthSample[] {
  const samples: BandwidthSample[] = [];
  const byUid = new Map(holders.map((h) => [h.pod.uid, h.pod]));
  for (const [uid, stretches] of splitInterval(holders, t, context.intervalMs)) {
    const pod = uid === '' ? undefined : byUid.get(uid);
    const spanStartMs = stretches[0]!.from;
    const spanEndMs = stretches[stretches.length - 1]!.to;
    // Share over the hull, so rate x share x span is exactly the bytes of the held stretches.
    const weighted = stretches.reduce((sum, s) => sum + s.share * (s.to - s.from), 0);
    const share = weighted / (spanEndMs - spanStartMs);
    samples.push({
      id: bandwidthSampleId(context.clusterId, reading.key, pod?.uid, t),
      clusterId: context.clusterId,
      observedAtMs: t,
      spanStartMs,
      spanEndMs,
      gpuUuid: reading.gpuUuid,
      gpuIndex: reading.gpuIndex,
      migInstanceId: reading.migInstanceId,
      migProfile: reading.migProfile,
      hostname: reading.hostname,
      gpuType: reading.gpuType,
      podUid: pod?.uid ?? '',
      podName: pod?.name ?? '',
      namespace: pod?.namespace ?? '',
      subject: pod?.subject ?? UNALLOCATED_SUBJECT,
      project: pod?.project ?? '',
      department: pod?.department ?? '',
      workloadType: pod?.workloadType ?? 'Unknown',
      share,
      nvlinkTxBytesPerSecond: reading.nvlinkTx * share,
      nvlinkRxBytesPerSecond: reading.nvlinkRx * share,
      pcieTxBytesPerSecond: reading.pcieTx * share,
      pcieRxBytesPerSecond: reading.pcieRx * share,
      fbUsedBytes: reading.fbUsedMiB * MIB * share,
      observer: context.observer,
    });
  }
  return samples;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
