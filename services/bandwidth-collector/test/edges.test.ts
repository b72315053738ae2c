import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { PodStore } from '@gpu-meter/kit/runai';
import {
  buildModel,
  buildTimeline,
  expectedSamples,
  parseScenario,
  renderMetrics,
  type ScenarioInput,
} from '@gpu-meter/simulator';
import { describe, expect, it } from 'vitest';
import { PodIndex, attributeDevice, candidateHolders } from '../src/attribution.js';
import { parseDcgm } from '../src/dcgm.js';
import { NamedHolders } from '../src/named-holders.js';

/**
 * The collector's attribution, driven purely from a scenario: at each grid point t it sees the pods the fake
 * API holds at the scrape instant t + delay and the fake exporter's page at that instant, exactly as the
 * service's tick does, and its samples must equal the simulator's truth. Holders start and end between grid
 * points, in the first moments of an interval (before the scrape that follows the grid point).
 */
const T0 = Date.UTC(2030, 0, 1);
const I = 15_000;
const attribution = {
  clusterId: 'c1',
  projectDepartments: {},
  projectCustomers: {},
  fallbackSubject: 'unattributed',
};
const context = { clusterId: 'c1', intervalMs: I, observer: 'edges-test' };

function collect(input: ScenarioInput, sampleDelayMs: number) {
  const scenario = parseScenario(input);
  const model = buildModel(scenario);
  const timeline = buildTimeline({ model, startMs: T0, dcgmHost: '127.0.0.1', dcgmPort: 9400 });
  const store = new PodStore();
  const nodes = new Map<string, V1Node>();
  const holders = new NamedHolders();
  let next = 0;
  const samples = [];
  // The tick at the scenario start only seeds what the exporter named (a collector already running then).
  for (let t = T0; t <= T0 + scenario.durationMs; t += I) {
    const scrapeAt = t + sampleDelayMs;
    for (; next < timeline.length && T0 + timeline[next]!.atMs <= scrapeAt; next++) {
      const change = timeline[next]!;
      const object = change.object as unknown as V1Pod & V1Node;
      if (change.kind === 'Node') nodes.set(change.object.metadata.name, object);
      else if (change.action === 'upsert') store.upsert(object);
      else store.remove(object, T0 + change.atMs);
    }
    const index = new PodIndex(store.all());
    for (const node of scenario.nodes) {
      for (const reading of parseDcgm(renderMetrics(model, node.name, scrapeAt - T0)!).devices) {
        const named = holders.at(reading.key, reading.pod, index, t - I);
        const found = attributeDevice(
          reading,
          candidateHolders(named, index, nodes, attribution),
          t,
          context,
        );
        if (t > T0) samples.push(...found);
      }
    }
    store.prune(t - 2 * I);
  }
  return { scenario, samples };
}

type PodInput = NonNullable<ScenarioInput['pods']>[number];
type Amounts = Record<'nvlinkTx' | 'pcieTx' | 'pcieRx' | 'fbByteSeconds', number>;

/** Per (grid point, device, holder): the amounts of the sample, keyed so both sides compare one to one. */
function collectorAmounts(samples: ReturnType<typeof collect>['samples']): Map<string, Amounts> {
  const out = new Map<string, Amounts>();
  for (const s of samples) {
    const seconds = (s.spanEndMs - s.spanStartMs) / 1000;
    out.set(`${s.observedAtMs - T0} ${s.gpuUuid}/${s.migInstanceId ?? ''} ${s.podName || s.subject}`, {
      nvlinkTx: s.nvlinkTxBytesPerSecond * seconds,
      pcieTx: s.pcieTxBytesPerSecond * seconds,
      pcieRx: s.pcieRxBytesPerSecond * seconds,
      fbByteSeconds: s.fbUsedBytes * seconds,
    });
  }
  return out;
}

function truthAmounts(input: ScenarioInput): Map<string, Amounts> {
  const out = new Map<string, Amounts>();
  for (const s of expectedSamples(parseScenario(input), { samplingIntervalMs: I }).bandwidth) {
    out.set(`${s.observedAtMs - T0} ${s.gpuUuid}/${s.migInstanceId ?? ''} ${s.podName || s.subject}`, {
      nvlinkTx: s.nvlinkTxBytes,
      pcieTx: s.pcieTxBytes,
      pcieRx: s.pcieRxBytes,
      fbByteSeconds: s.gpuMemoryUsedByteSeconds,
    });
  }
  return out;
}

/** Equal sample sets, each amount to 1e-9 relative (products of shares and rates). */
function expectSameAmounts(actual: Map<string, Amounts>, expected: Map<string, Amounts>) {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [key, want] of expected) {
    const got = actual.get(key)!;
    for (const q of Object.keys(want) as (keyof Amounts)[]) {
      const scale = Math.max(1, Math.abs(want[q]));
      expect(Math.abs(got[q] - want[q]) / scale, `${key} ${q}: ${got[q]} vs ${want[q]}`).toBeLessThan(1e-9);
    }
  }
}

/**
 * One node: on GPU 0 a whole-GPU pod ends `edge` ms after the grid point at 15 s and the next starts right
 * after it; on GPU 1 two sharers end there too and a third (a new reservation period) starts; GPU 2 holds
 * a pod from a mid-interval start until the scenario's end. Every device has traffic and framebuffer use.
 */
function edges(precision: 's' | 'ms', edge: number, gap: number): ScenarioInput {
  const end = I + edge;
  const next = end + gap;
  const pod = (name: string, startMs: number, endMs: number | undefined, gpu: PodInput['gpu']) => ({
    name,
    project: name.slice(0, 2),
    workloadKind: 'Training' as const,
    node: 'n1',
    gpu,
    startMs,
    ...(endMs === undefined ? {} : { endMs }),
  });
  const metrics = {
    pcieTxBytesPerSec: 3e8,
    pcieRxBytesPerSec: 1e8,
    nvlinkTxBytesPerSec: 2e9,
    fbUsedMiB: 4000,
  };
  return {
    clusterId: 'c1',
    startMs: T0,
    durationMs: 4 * I,
    timestampPrecision: precision,
    nodes: [{ name: 'n1', gpuProduct: 'NVIDIA-A100-SXM4-80GB', gpuCount: 3, gpuMemoryMiB: 81920 }],
    pods: [
      pod('pa-first', 0, end, { whole: [0] }),
      pod('pb-next', next, undefined, { whole: [0] }),
      pod('pc-share-1', 0, end, { fraction: 0.5, gpu: 1 }),
      pod('pd-share-2', 0, end, { fraction: 0.25, gpu: 1 }),
      pod('pe-share-3', next, undefined, { fraction: 0.5, gpu: 1 }),
      pod('pf-late', 2 * I + 3 * edge, undefined, { whole: [2] }),
    ],
    gpuMetrics: [0, 1, 2].map((gpu) => ({ node: 'n1', gpu, segments: [{ fromMs: 0, ...metrics }] })),
  };
}

describe('bandwidth attribution equals the truth around holders starting and ending between grid points', () => {
  it('whole-second pod times, default SAMPLE_DELAY_MS (1 s): a holder ending 1 s after a grid point', () => {
    const input = edges('s', 1_000, 0);
    expectSameAmounts(collectorAmounts(collect(input, 1_000).samples), truthAmounts(input));
  });

  it('whole-second pod times, a scrape well inside the first second', () => {
    const input = edges('s', 2_000, 1_000);
    expectSameAmounts(collectorAmounts(collect(input, 250).samples), truthAmounts(input));
  });

  it('millisecond pod times: a holder ending before the scrape that follows the grid point', () => {
    const input = edges('ms', 137, 41);
    expectSameAmounts(collectorAmounts(collect(input, 250).samples), truthAmounts(input));
  });

  it('millisecond pod times ending after the scrape', () => {
    const input = edges('ms', 1_337, 1);
    expectSameAmounts(collectorAmounts(collect(input, 250).samples), truthAmounts(input));
  });
});

describe('NamedHolders', () => {
  const ref = (name: string) => ({ namespace: 'runai-pa', name });
  const running = (name: string, startMs: number, endMs?: number): V1Pod => ({
    metadata: { name, namespace: 'runai-pa', uid: `uid-${name}` },
    spec: { schedulerName: 'runai-scheduler', containers: [] },
    status:
      endMs === undefined
        ? { phase: 'Running', startTime: new Date(startMs) }
        : {
            phase: 'Succeeded',
            startTime: new Date(startMs),
            containerStatuses: [
              {
                name: 'main',
                image: 'x',
                imageID: 'x',
                ready: false,
                restartCount: 0,
                state: { terminated: { exitCode: 0, finishedAt: new Date(endMs) } },
              },
            ],
          },
  });
  const index = (...pods: V1Pod[]) => {
    const store = new PodStore();
    for (const p of pods) store.upsert(p);
    return new PodIndex(store.all());
  };

  it('keeps a name while its pod may reach into the interval, then forgets it', () => {
    const holders = new NamedHolders();
    expect(holders.at('gpu', ref('a'), index(running('a', 0)), 0)).toEqual([ref('a')]);
    // a ended at 1100, after the interval [1000, 2000) began; b is named now.
    const both = index(running('a', 0, 1_100), running('b', 1_200));
    expect(holders.at('gpu', ref('b'), both, 1_000)).toEqual([ref('a'), ref('b')]);
    expect(holders.at('gpu', ref('b'), both, 2_000)).toEqual([ref('b')]);
    // A name the cache no longer has (pruned) is forgotten too, unless named again.
    expect(holders.at('gpu', undefined, index(), 3_000)).toEqual([]);
  });

  it('keeps each device apart', () => {
    const holders = new NamedHolders();
    const pods = index(running('a', 0), running('b', 0));
    holders.at('gpu-0', ref('a'), pods, 0);
    expect(holders.at('gpu-1', ref('b'), pods, 0)).toEqual([ref('b')]);
    expect(holders.at('gpu-0', undefined, pods, 1_000)).toEqual([ref('a')]);
  });
});
