import { USAGE_QUANTITIES, type UsageQuantities, type UsageQuantity } from '@gpu-meter/kit/contracts';
import {
  buildModel,
  holdersAt,
  MIB,
  segmentAt,
  type ClusterModel,
  type DeviceFacts,
  type PodFacts,
} from './model.js';
import type { Scenario } from './scenario.js';

/**
 * Ground truth, part 1: the samples a correct collector pair publishes for a scenario, and the pieces (stretches
 * of constant per-second quantities) that totals are summed from. DESIGN §3 semantics; see README. Pure.
 */
/** The quantity names of the usage-event contract (schemas/usage-event.avsc), from the kit. */
export const QUANTITIES = USAGE_QUANTITIES;
export type Quantity = UsageQuantity;
export type Quantities = UsageQuantities;

export interface Dimensions {
  clusterId: string;
  subject: string;
  project: string;
  department: string;
  workloadType: string;
  gpuType: string;
}

export interface TruthOptions {
  samplingIntervalMs: number;
  /** Absolute epoch ms; default the scenario start. */
  fromMs?: number;
  /** Absolute epoch ms; default start + durationMs. */
  toMs?: number;
  /** Overrides scenario.startMs (required when the scenario has none). */
  startMs?: number;
  /** Subject of a pod with no project label, no runai-<project> namespace and no queue label. */
  fallbackSubject?: string;
}

export interface ExpectedAllocationSample extends Dimensions {
  kind: 'allocation';
  observedAtMs: number;
  spanStartMs: number;
  spanEndMs: number;
  podUid: string;
  podName: string;
  namespace: string;
  nodeName: string;
  queue: string;
  user: string;
  workloadId: string;
  migProfile: string | null;
  gpus: number;
  gpuMemoryBytes: number;
  cpuCores: number;
  memoryBytes: number;
}

export interface ExpectedBandwidthSample extends Dimensions {
  kind: 'bandwidth';
  observedAtMs: number;
  /** Hull of the held (or, for unallocated, unheld) time within [t - interval, t). */
  spanStartMs: number;
  spanEndMs: number;
  gpuUuid: string;
  gpuIndex: number;
  migInstanceId: string | null;
  migProfile: string | null;
  hostname: string;
  podUid: string;
  podName: string;
  namespace: string;
  /** The share (constant over the span when sharers change only on grid points; else the time-weighted mean). */
  share: number;
  nvlinkTxBytesPerSecond: number;
  nvlinkRxBytesPerSecond: number;
  pcieTxBytesPerSecond: number;
  pcieRxBytesPerSecond: number;
  fbUsedBytes: number;
  /** Exact amounts of this sample. */
  nvlinkTxBytes: number;
  nvlinkRxBytes: number;
  pcieTxBytes: number;
  pcieRxBytes: number;
  gpuMemoryUsedByteSeconds: number;
}

export interface ExpectedSamples {
  startMs: number;
  billedFromMs: number;
  billedToMs: number;
  samplingIntervalMs: number;
  allocation: ExpectedAllocationSample[];
  bandwidth: ExpectedBandwidthSample[];
}

/** A stretch of one sample during which its per-second quantities are constant. */
export interface Piece {
  sample: number;
  dims: Dimensions;
  fromMs: number;
  toMs: number;
  perSecond: Partial<Quantities>;
}

export function billedRange(
  samplingIntervalMs: number,
  fromMs: number,
  toMs: number,
): { lo: number; hi: number } {
  const i = samplingIntervalMs;
  const lo = Math.ceil(fromMs / i) * i;
  return { lo, hi: Math.max(lo, Math.floor(toMs / i) * i) };
}

function resolve(scenario: Scenario, o: TruthOptions) {
  if (!Number.isInteger(o.samplingIntervalMs) || o.samplingIntervalMs <= 0)
    throw new Error('samplingIntervalMs must be a positive integer');
  const startMs = o.startMs ?? scenario.startMs;
  if (startMs === undefined) throw new Error('the scenario has no startMs: pass options.startMs');
  const { lo, hi } = billedRange(
    o.samplingIntervalMs,
    o.fromMs ?? startMs,
    o.toMs ?? startMs + scenario.durationMs,
  );
  return { startMs, lo, hi, interval: o.samplingIntervalMs };
}

function podDims(model: ClusterModel, p: PodFacts, gpuType: string, fallbackSubject: string): Dimensions {
  return {
    clusterId: model.scenario.clusterId,
    subject: p.subject ?? fallbackSubject,
    project: p.project,
    department: p.department,
    workloadType: p.workloadType,
    gpuType,
  };
}

export function computeTruth(
  scenario: Scenario,
  o: TruthOptions,
): { samples: ExpectedSamples; pieces: Piece[] } {
  const { startMs, lo, hi, interval } = resolve(scenario, o);
  const model = buildModel(scenario);
  const fallback = o.fallbackSubject ?? 'unattributed';
  const allocation: ExpectedAllocationSample[] = [];
  const bandwidth: ExpectedBandwidthSample[] = [];
  const pieces: Piece[] = [];
  let sampleNo = 0;

  for (const p of model.pods) {
    const runStart = startMs + p.runStart;
    const runEnd = startMs + p.runEnd;
    const first = Math.max(lo + interval, Math.floor(runStart / interval) * interval + interval);
    for (let t = first; t <= hi && t - interval < runEnd; t += interval) {
      const spanStartMs = Math.max(t - interval, runStart);
      const spanEndMs = Math.min(t, runEnd);
      if (spanEndMs <= spanStartMs) continue;
      const dims = podDims(model, p, p.gpuType, fallback);
      allocation.push({
        kind: 'allocation',
        ...dims,
        observedAtMs: t,
        spanStartMs,
        spanEndMs,
        podUid: p.uid,
        podName: p.pod.name,
        namespace: p.namespace,
        nodeName: p.node.name,
        queue: p.queue,
        user: p.pod.omit.includes('user') ? '' : (p.pod.annotations.user ?? p.pod.user),
        workloadId: p.workloadId,
        migProfile: p.device?.kind === 'mig' ? p.device.profile : null,
        gpus: p.gpus,
        gpuMemoryBytes: p.gpuMemoryBytes,
        cpuCores: p.cpuCores,
        memoryBytes: p.memoryBytes,
      });
      pieces.push({
        sample: sampleNo++,
        dims,
        fromMs: spanStartMs,
        toMs: spanEndMs,
        perSecond: {
          gpuAllocationSeconds: p.gpus,
          gpuMemoryAllocatedByteSeconds: p.gpuMemoryBytes,
          cpuCoreSeconds: p.cpuCores,
          memoryByteSeconds: p.memoryBytes,
        },
      });
    }
  }

  for (const device of model.devices) {
    for (let t = lo + interval; t <= hi; t += interval) {
      sampleNo = bandwidthAt(model, device, startMs, t, interval, fallback, sampleNo, bandwidth, pieces);
    }
  }
  return {
    samples: {
      startMs,
      billedFromMs: lo,
      billedToMs: hi,
      samplingIntervalMs: interval,
      allocation,
      bandwidth,
    },
    pieces,
  };
}

/** Splits [t - interval, t) of one device at every holder change and attributes each stretch. */
function bandwidthAt(
  model: ClusterModel,
  device: DeviceFacts,
  startMs: number,
  t: number,
  interval: number,
  fallback: string,
  sampleNo: number,
  out: ExpectedBandwidthSample[],
  pieces: Piece[],
): number {
  const rate = segmentAt(device.segments, t - startMs - model.scenario.dcgm.lagMs);
  const cuts = new Set([t - interval, t]);
  for (const p of model.pods) {
    if (p.node !== device.node) continue;
    for (const edge of [startMs + p.runStart, startMs + p.runEnd])
      if (edge > t - interval && edge < t) cuts.add(edge);
  }
  const edges = [...cuts].sort((a, b) => a - b);
  const byHolder = new Map<
    string,
    { pod: PodFacts | undefined; stretches: { from: number; to: number; share: number }[] }
  >();
  for (let k = 0; k + 1 < edges.length; k++) {
    const from = edges[k]!;
    const to = edges[k + 1]!;
    const holders = holdersAt(model, device, from - startMs);
    const list = holders.length > 0 ? holders : [{ pod: undefined, share: 1 }];
    for (const h of list) {
      const key = h.pod?.uid ?? '';
      const entry = byHolder.get(key) ?? { pod: h.pod, stretches: [] };
      entry.stretches.push({ from, to, share: h.share });
      byHolder.set(key, entry);
    }
  }
  for (const { pod, stretches } of byHolder.values()) {
    const dims: Dimensions = pod
      ? podDims(model, pod, device.gpuType, fallback)
      : {
          clusterId: model.scenario.clusterId,
          subject: 'unallocated',
          project: '',
          department: '',
          workloadType: 'Unknown',
          gpuType: device.gpuType,
        };
    let heldMs = 0;
    let weighted = 0;
    for (const s of stretches) {
      heldMs += s.to - s.from;
      weighted += s.share * (s.to - s.from);
      pieces.push({
        sample: sampleNo,
        dims,
        fromMs: s.from,
        toMs: s.to,
        perSecond: {
          nvlinkTxBytes: rate.nvlinkTxBytesPerSec * s.share,
          nvlinkRxBytes: rate.nvlinkRxBytesPerSec * s.share,
          pcieTxBytes: rate.pcieTxBytesPerSec * s.share,
          pcieRxBytes: rate.pcieRxBytesPerSec * s.share,
          gpuMemoryUsedByteSeconds: rate.fbUsedMiB * MIB * s.share,
        },
      });
    }
    const share = stretches.every((s) => s.share === stretches[0]!.share)
      ? stretches[0]!.share
      : weighted / heldMs;
    const amount = (perSecond: number) =>
      stretches.reduce((acc, s) => acc + (perSecond * s.share * (s.to - s.from)) / 1000, 0);
    out.push({
      kind: 'bandwidth',
      ...dims,
      observedAtMs: t,
      spanStartMs: stretches[0]!.from,
      spanEndMs: stretches[stretches.length - 1]!.to,
      gpuUuid: device.gpuUuid,
      gpuIndex: device.gpu,
      migInstanceId: device.migInstance === undefined ? null : String(device.migInstance),
      migProfile: device.migProfile ?? null,
      hostname: device.node.name,
      podUid: pod?.uid ?? '',
      podName: pod?.pod.name ?? '',
      namespace: pod?.namespace ?? '',
      share,
      nvlinkTxBytesPerSecond: rate.nvlinkTxBytesPerSec * share,
      nvlinkRxBytesPerSecond: rate.nvlinkRxBytesPerSec * share,
      pcieTxBytesPerSecond: rate.pcieTxBytesPerSec * share,
      pcieRxBytesPerSecond: rate.pcieRxBytesPerSec * share,
      fbUsedBytes: rate.fbUsedMiB * MIB * share,
      nvlinkTxBytes: amount(rate.nvlinkTxBytesPerSec),
      nvlinkRxBytes: amount(rate.nvlinkRxBytesPerSec),
      pcieTxBytes: amount(rate.pcieTxBytesPerSec),
      pcieRxBytes: amount(rate.pcieRxBytesPerSec),
      gpuMemoryUsedByteSeconds: amount(rate.fbUsedMiB * MIB),
    });
    sampleNo++;
  }
  return sampleNo;
}

export function expectedSamples(scenario: Scenario, options: TruthOptions): ExpectedSamples {
  return computeTruth(scenario, options).samples;
}
