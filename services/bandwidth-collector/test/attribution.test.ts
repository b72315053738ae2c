import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { BandwidthSample } from '@gpu-meter/kit/contracts';
import { PodStore, bandwidthSampleId, bandwidthSampleKey } from '@gpu-meter/kit/runai';
import { publishedMessages } from '../../../test/support/recording-publisher.js';
import { PodIndex, attributeDevice, candidateHolders, type DeviceContext } from '../src/attribution.js';
import type { DeviceReading } from '../src/dcgm.js';

const I = 1_000;
const T0 = 1_767_225_600_000;
const iso = (ms: number) => new Date(ms).toISOString();
const attribution = {
  clusterId: 'c1',
  projectDepartments: {},
  projectCustomers: { 'team-b': 'globex' },
  fallbackSubject: 'unattributed',
};
const context: DeviceContext = { clusterId: 'c1', intervalMs: I, observer: 'replica-a' };

function pod(
  name: string,
  startMs: number,
  endMs: number | undefined,
  extra: { fraction?: string; group?: string; namespace?: string } = {},
): V1Pod {
  const reservation = extra.namespace === 'runai-reservation';
  return {
    metadata: {
      name,
      uid: `uid-${name}`,
      namespace: extra.namespace ?? 'runai-team-b',
      labels: {
        ...(reservation ? { app: 'runai-reservation' } : { project: 'team-b', workloadKind: 'Interactive' }),
        ...(extra.group ? { 'runai-gpu-group': extra.group } : {}),
      },
      annotations: extra.fraction
        ? { 'runai-allocated-gpus': extra.fraction }
        : { 'runai-allocated-gpus': '1' },
    },
    spec: { schedulerName: 'runai-scheduler', nodeName: 'n', containers: [] },
    status:
      endMs === undefined
        ? { phase: 'Running', startTime: iso(startMs) as unknown as Date }
        : {
            phase: 'Succeeded',
            startTime: iso(startMs) as unknown as Date,
            containerStatuses: [
              {
                name: 'main',
                state: { terminated: { exitCode: 0, finishedAt: iso(endMs) as unknown as Date } },
              } as never,
            ],
          },
  };
}

const reading = (over: Partial<DeviceReading> = {}): DeviceReading => ({
  key: 'GPU-1',
  gpuUuid: 'GPU-1',
  gpuIndex: 1,
  migInstanceId: null,
  migProfile: null,
  hostname: 'n',
  gpuType: 'NVIDIA-A100-SXM4-80GB',
  pod: undefined,
  nvlinkTx: 1_000,
  nvlinkRx: 2_000,
  pcieTx: 300,
  pcieRx: 400,
  fbUsedMiB: 10,
  ...over,
});

function run(
  pods: V1Pod[],
  named: Array<{ namespace: string; name: string } | undefined>,
  over: Partial<DeviceReading> = {},
  observer = context.observer,
) {
  const store = new PodStore();
  for (const p of pods) store.upsert(p);
  const holders = candidateHolders(named, new PodIndex(store.all()), new Map(), attribution);
  return attributeDevice(reading(over), holders, T0 + I, { ...context, observer });
}

const bytes = (s: { nvlinkTxBytesPerSecond: number; spanStartMs: number; spanEndMs: number }) =>
  (s.nvlinkTxBytesPerSecond * (s.spanEndMs - s.spanStartMs)) / 1000;

describe('bandwidth attribution', () => {
  it('gives a whole GPU named by the exporter to its pod, share 1', () => {
    const samples = run(
      [pod('train', T0 - 5_000, undefined)],
      [undefined, { namespace: 'runai-team-b', name: 'train' }],
    );
    expect(samples).toHaveLength(1);
    expect(samples[0]).toMatchObject({
      id: bandwidthSampleId('c1', 'GPU-1', 'uid-train', T0 + I),
      podUid: 'uid-train',
      subject: 'globex',
      share: 1,
      spanStartMs: T0,
      spanEndMs: T0 + I,
      nvlinkTxBytesPerSecond: 1_000,
      fbUsedBytes: 10 * 2 ** 20,
    });
  });

  it("splits a reservation pod's GPU among its sharers by fraction, never the full value per sharer", () => {
    const pods = [
      pod('runai-reservation-gpu-n-1-0', T0 - 9_000, undefined, {
        namespace: 'runai-reservation',
        group: 'g1',
      }),
      pod('a', T0 - 9_000, undefined, { fraction: '0.5', group: 'g1' }),
      pod('b', T0 - 9_000, undefined, { fraction: '0.25', group: 'g1' }),
    ];
    const samples = run(pods, [
      undefined,
      { namespace: 'runai-reservation', name: 'runai-reservation-gpu-n-1-0' },
    ]);
    expect(samples.map((s) => [s.podName, s.share])).toEqual([
      ['a', 0.5 / 0.75],
      ['b', 0.25 / 0.75],
    ]);
    expect(samples.reduce((sum, s) => sum + s.nvlinkTxBytesPerSecond, 0)).toBeCloseTo(1_000, 9);
  });

  it('bills a pod that ended mid-interval (named only at the previous scrape) to its end, the rest unallocated', () => {
    const samples = run(
      [pod('train', T0 - 5_000, T0 + 300)],
      [{ namespace: 'runai-team-b', name: 'train' }, undefined],
    );
    expect(samples.map((s) => [s.subject, s.spanStartMs - T0, s.spanEndMs - T0, s.share])).toEqual([
      ['globex', 0, 300, 1],
      ['unallocated', 300, 1_000, 1],
    ]);
    expect(samples.reduce((sum, s) => sum + bytes(s), 0)).toBeCloseTo(1_000, 9);
  });

  it('re-splits when a sharer leaves mid-interval; bytes stay exact with a time-weighted share', () => {
    const pods = [
      pod('runai-reservation-gpu-n-1-0', T0 - 9_000, undefined, {
        namespace: 'runai-reservation',
        group: 'g1',
      }),
      pod('a', T0 - 9_000, T0 + 400, { fraction: '0.5', group: 'g1' }),
      pod('b', T0 - 9_000, undefined, { fraction: '0.5', group: 'g1' }),
    ];
    const ref = { namespace: 'runai-reservation', name: 'runai-reservation-gpu-n-1-0' };
    const samples = run(pods, [ref, ref]);
    const a = samples.find((s) => s.podName === 'a')!;
    const b = samples.find((s) => s.podName === 'b')!;
    expect([a.spanStartMs - T0, a.spanEndMs - T0, a.share]).toEqual([0, 400, 0.5]);
    expect(bytes(a)).toBeCloseTo(200, 9);
    expect(bytes(b)).toBeCloseTo(0.5 * 400 + 600, 9);
  });

  it('bills a device no pod holds to unallocated, once, zero rates included', () => {
    const samples = run([], [undefined, undefined], { nvlinkTx: 0 });
    expect(samples).toEqual([
      expect.objectContaining({
        subject: 'unallocated',
        podUid: '',
        project: '',
        workloadType: 'Unknown',
        share: 1,
        nvlinkTxBytesPerSecond: 0,
      }),
    ]);
    expect(samples[0]!.id).toBe(bandwidthSampleId('c1', 'GPU-1', undefined, T0 + I));
  });

  it('gives unheld time around a gap exactly: share over the hull', () => {
    const pods = [pod('x', T0 - 1_000, T0 + 200), pod('y', T0 + 700, undefined)];
    const samples = run(pods, [
      { namespace: 'runai-team-b', name: 'x' },
      { namespace: 'runai-team-b', name: 'y' },
    ]);
    const free = samples.find((s) => s.subject === 'unallocated')!;
    expect([free.spanStartMs - T0, free.spanEndMs - T0]).toEqual([200, 700]);
    expect(samples.reduce((sum, s) => sum + bytes(s), 0)).toBeCloseTo(1_000, 9);
  });

  it('treats a named pod it cannot find as unallocated time', () => {
    const samples = run([], [undefined, { namespace: 'runai-team-b', name: 'ghost' }]);
    expect(samples.map((s) => s.subject)).toEqual(['unallocated']);
  });
});

/**
 * Two replicas that disagree on a GPU's holder (their watches saw a reassignment at different moments)
 * publish different sample ids for one observation. The aggregator can only pick one replica's view if
 * the copies meet in one partition, so the key is fixed by the physical GPU, and each copy names its
 * observer.
 */
describe('copies of one GPU observation from disagreeing replicas', () => {
  const y = pod('y', T0 - 5_000, undefined);
  y.metadata!.labels!.project = 'team-c';
  const pods = [pod('x', T0 - 5_000, undefined), y];
  const holder = (name: string) => [undefined, { namespace: 'runai-team-b', name }];

  async function keys(samples: BandwidthSample[]): Promise<string[]> {
    return (await publishedMessages('bandwidthSample', bandwidthSampleKey, samples)).map((m) => m.key);
  }

  it('share one key, cluster/GPU uuid, whichever holder each replica saw', async () => {
    const a = run(pods, holder('x'), {}, 'replica-a');
    const b = run(pods, holder('y'), {}, 'replica-b');
    // C's cache has not seen the pod yet: the time is unallocated there.
    const c = run([], holder('x'), {}, 'replica-c');
    expect([...a, ...b, ...c].map((s) => s.subject)).toEqual(['globex', 'team-c', 'unallocated']);
    expect(new Set([...a, ...b, ...c].map((s) => s.id)).size).toBe(3);
    expect(await keys([...a, ...b, ...c])).toEqual(['c1/GPU-1', 'c1/GPU-1', 'c1/GPU-1']);
  });

  it('key a MIG instance and unallocated time by the physical GPU too', async () => {
    const mig = run(pods, holder('x'), { key: 'GPU-1/3', migInstanceId: '3', migProfile: '1g.10gb' });
    const free = run([], [undefined, undefined]);
    expect(await keys([...mig, ...free])).toEqual(['c1/GPU-1', 'c1/GPU-1']);
  });

  it("name the process that observed them: every sample of one replica's grid point carries its observer", async () => {
    const a = run(pods, holder('x'), {}, 'replica-a');
    const b = run(
      [pod('x', T0 - 5_000, T0 + 300)],
      [{ namespace: 'runai-team-b', name: 'x' }, undefined],
      {},
      'replica-b',
    );
    expect(b.length).toBeGreaterThan(1);
    const published = await publishedMessages('bandwidthSample', bandwidthSampleKey, [...a, ...b]);
    expect(published.map((m) => m.value.observer)).toEqual([
      ...a.map(() => 'replica-a'),
      ...b.map(() => 'replica-b'),
    ]);
  });
});
