import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { deterministicId, type PodAllocationSample } from '@gpu-meter/kit/contracts';
import { PodStore, podSampleKey } from '@gpu-meter/kit/runai';
import { publishedMessages } from '../../../test/support/recording-publisher.js';
import { AllocationPlanner, rejectedPodDeadLetter } from '../src/planner.js';

const I = 1_000;
const T0 = 1_767_225_600_000;
const iso = (ms: number) => new Date(ms).toISOString();
const attribution = {
  clusterId: 'conf-cluster',
  projectDepartments: { 'team-a': 'research' },
  projectCustomers: { 'team-a': 'acme' },
  fallbackSubject: 'unattributed',
};
const nodes = new Map<string, V1Node>([
  [
    'node-a',
    {
      metadata: {
        name: 'node-a',
        labels: { 'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3', 'nvidia.com/gpu.memory': '81559' },
      },
    },
  ],
]);

function pod(
  name: string,
  startMs: number,
  endMs?: number,
  extra: Partial<{ namespace: string; labels: Record<string, string> }> = {},
): V1Pod {
  const pod = {
    metadata: {
      name,
      uid: `uid-${name}`,
      namespace: extra.namespace ?? 'runai-team-a',
      labels: extra.labels ?? { project: 'team-a', 'runai/queue': 'team-a', workloadKind: 'Training' },
      annotations: { user: 'alice', workloadId: `wl-${name}`, clusterId: 'sim', 'runai-allocated-gpus': '1' },
    },
    spec: {
      schedulerName: 'runai-scheduler',
      nodeName: 'node-a',
      containers: [
        {
          name: 'main',
          resources: { requests: { cpu: '2', memory: '1Gi' }, limits: { 'nvidia.com/gpu': '1' } },
        },
      ],
    },
    status:
      endMs === undefined
        ? {
            phase: 'Running',
            startTime: iso(startMs),
            containerStatuses: [{ name: 'main', state: { running: { startedAt: iso(startMs) } } }],
          }
        : {
            phase: 'Succeeded',
            startTime: iso(startMs),
            containerStatuses: [
              { name: 'main', state: { terminated: { startedAt: iso(startMs), finishedAt: iso(endMs) } } },
            ],
          },
  };
  return pod as unknown as V1Pod;
}

function storeOf(...pods: V1Pod[]): PodStore {
  const store = new PodStore();
  for (const p of pods) store.upsert(p);
  return store;
}

const spans = (samples: { observedAtMs: number; spanStartMs: number; spanEndMs: number }[]) =>
  samples.map((s) => [s.observedAtMs - T0, s.spanStartMs - T0, s.spanEndMs - T0]);

describe('AllocationPlanner', () => {
  it('samples a running pod once per grid point, clipped to its start', () => {
    const planner = new AllocationPlanner(I, 0, attribution);
    const store = storeOf(pod('a', T0 + 500));
    expect(spans(planner.plan(store.all(), nodes, T0 + 1_000).samples)).toEqual([[1_000, 500, 1_000]]);
    expect(spans(planner.plan(store.all(), nodes, T0 + 2_000).samples)).toEqual([[2_000, 1_000, 2_000]]);
    expect(planner.plan(store.all(), nodes, T0 + 2_000).samples).toEqual([]);
  });

  it('bills a pod that ends between grid points to the millisecond, then stops', () => {
    const planner = new AllocationPlanner(I, 0, attribution);
    const running = pod('a', T0);
    planner.plan(storeOf(running).all(), nodes, T0 + 1_000);
    const ended = storeOf(pod('a', T0, T0 + 1_437));
    expect(spans(planner.plan(ended.all(), nodes, T0 + 2_000).samples)).toEqual([[2_000, 1_000, 1_437]]);
    expect(planner.plan(ended.all(), nodes, T0 + 3_000).samples).toEqual([]);
  });

  it('fills the points a pod missed when it is first seen, back to the look-back bound', () => {
    const planner = new AllocationPlanner(I, 3_000, attribution);
    const plan = planner.plan(
      storeOf(pod('a', T0), pod('done', T0 + 200, T0 + 2_300)).all(),
      nodes,
      T0 + 5_000,
    );
    const a = plan.samples.filter((s) => s.podName === 'a');
    expect(spans(a)).toEqual([
      [2_000, 1_000, 2_000],
      [3_000, 2_000, 3_000],
      [4_000, 3_000, 4_000],
      [5_000, 4_000, 5_000],
    ]);
    expect(spans(plan.samples.filter((s) => s.podName === 'done'))).toEqual([
      [2_000, 1_000, 2_000],
      [3_000, 2_000, 2_300],
    ]);
    expect(plan.backfilled).toBe(5);
  });

  it('gives the same ids as any other replica or restart: a hash of cluster, pod uid, kind and t', () => {
    const store = storeOf(pod('a', T0));
    const first = new AllocationPlanner(I, 10_000, attribution).plan(store.all(), nodes, T0 + 3_000).samples;
    const second = new AllocationPlanner(I, 10_000, attribution).plan(store.all(), nodes, T0 + 3_000).samples;
    expect(second).toEqual(first);
    expect(first[0]!.id).toBe(deterministicId('conf-cluster', 'uid-a', 'pod-allocation', T0 + 1_000));
  });

  it("never reads the pod's clusterId annotation: its tenant could re-id (double-bill) or bloat its samples", () => {
    const plain = storeOf(pod('a', T0));
    const tenantEdited = pod('a', T0);
    tenantEdited.metadata!.annotations!.clusterId = 'x'.repeat(100_000);
    const edited = storeOf(tenantEdited);
    const ids = (store: PodStore) =>
      new AllocationPlanner(I, 10_000, attribution)
        .plan(store.all(), nodes, T0 + 3_000)
        .samples.map((s) => [s.id, s.clusterId]);
    expect(ids(edited)).toEqual(ids(plain));
    expect(ids(plain)[0]![1]).toBe('conf-cluster');
  });

  it('fills every sample field from the pod, node and maps', () => {
    const [sample] = new AllocationPlanner(I, 0, attribution).plan(
      storeOf(pod('a', T0)).all(),
      nodes,
      T0 + 1_000,
    ).samples;
    expect(sample).toEqual({
      id: deterministicId('conf-cluster', 'uid-a', 'pod-allocation', T0 + 1_000),
      clusterId: 'conf-cluster',
      observedAtMs: T0 + 1_000,
      spanStartMs: T0,
      spanEndMs: T0 + 1_000,
      podUid: 'uid-a',
      podName: 'a',
      namespace: 'runai-team-a',
      nodeName: 'node-a',
      subject: 'acme',
      project: 'team-a',
      department: 'research',
      queue: 'team-a',
      workloadType: 'Training',
      user: 'alice',
      workloadId: 'wl-a',
      gpuType: 'NVIDIA-H100-80GB-HBM3',
      migProfile: null,
      gpus: 1,
      gpuMemoryBytes: 81559 * 2 ** 20,
      cpuCores: 2,
      memoryBytes: 2 ** 30,
    });
  });

  it('bills a pod with no project to the fallback subject and reports it', () => {
    const planner = new AllocationPlanner(I, 0, attribution);
    const plan = planner.plan(
      storeOf(pod('stray', T0, undefined, { namespace: 'default', labels: {} })).all(),
      nodes,
      T0 + 1_000,
    );
    expect(plan.samples.map((s) => [s.subject, s.project])).toEqual([['unattributed', '']]);
    expect(plan.unattributed.map((p) => p.name)).toEqual(['stray']);
  });

  it('skips reservation pods, other schedulers and pods not started yet', () => {
    const reservation = pod('r', T0, undefined, {
      namespace: 'runai-reservation',
      labels: { app: 'runai-reservation' },
    });
    const other = pod('o', T0);
    other.spec!.schedulerName = 'default-scheduler';
    const pending = pod('p', T0);
    pending.status = { phase: 'Pending' };
    const plan = new AllocationPlanner(I, 0, attribution).plan(
      storeOf(reservation, other, pending).all(),
      nodes,
      T0 + 1_000,
    );
    expect(plan.samples).toEqual([]);
  });

  it('bills a pod deleted while running up to its deletion', () => {
    const planner = new AllocationPlanner(I, 0, attribution);
    const store = storeOf(pod('a', T0));
    planner.plan(store.all(), nodes, T0 + 1_000);
    const deleted = pod('a', T0);
    deleted.metadata!.deletionTimestamp = iso(T0 + 1_600) as unknown as Date;
    store.remove(deleted, T0 + 1_900);
    expect(spans(planner.plan(store.all(), nodes, T0 + 2_000).samples)).toEqual([[2_000, 1_000, 1_600]]);
  });
});

/**
 * Two collector replicas whose config or cache disagree on a pod's subject publish the same sample ids;
 * the copies must reach one partition (one aggregator task) to be counted once, so their Kafka keys
 * must not depend on what the replicas disagree about.
 */
describe('tenant-written inputs (issue 13 point 5)', () => {
  it('bills the limit for runai-allocated-gpus="0" beside nvidia.com/gpu: 4, and reports the pod', () => {
    const tenant = pod('cheap', T0);
    tenant.metadata!.annotations!['runai-allocated-gpus'] = '0';
    tenant.spec!.containers[0]!.resources!.limits = { 'nvidia.com/gpu': '4' };
    const plan = new AllocationPlanner(I, 10 * I, attribution).plan(storeOf(tenant).all(), nodes, T0 + 2 * I);
    expect(plan.samples.map((s) => s.gpus)).toEqual([4, 4]);
    expect(plan.corrected.map((p) => [p.name, p.inputIssues.map((i) => i.reason)])).toEqual([
      ['cheap', ['below-limit']],
    ]);
    const honest = new AllocationPlanner(I, 0, attribution).plan(storeOf(pod('ok', T0)).all(), nodes, T0 + I);
    expect(honest.corrected).toEqual([]);
  });
});

/**
 * Issue 13 point 7: a pod the model rejects (a quantity it cannot parse, an amount no bill can hold) must
 * cost that pod its samples, not every pod's grid point. It is reported, with what identifies it and why.
 */
describe('a pod the model rejects', () => {
  const unparsable = () => {
    const bad = pod('bad', T0);
    bad.spec!.containers[0]!.resources!.limits = { 'nvidia.com/gpu': 'lots' };
    return bad;
  };
  const badIdentity = {
    clusterId: 'conf-cluster',
    namespace: 'runai-team-a',
    name: 'bad',
    uid: 'uid-bad',
    gridPointsMs: [T0 + I],
    reason: 'model_error',
    detail: 'not a Kubernetes quantity: "lots"',
  };

  it('is reported with its reason, and every other pod is sampled', () => {
    const plan = new AllocationPlanner(I, 0, attribution).plan(
      storeOf(pod('a', T0), unparsable(), pod('c', T0)).all(),
      nodes,
      T0 + I,
    );
    expect(plan.samples.map((s) => [s.podName, s.observedAtMs - T0])).toEqual([
      ['a', I],
      ['c', I],
    ]);
    expect(plan.rejected).toEqual([{ ...badIdentity, repeated: false }]);
  });

  it('is dead-lettered keyed as its samples, naming the pod, its grid points and the reason', () => {
    const [rejected] = new AllocationPlanner(I, 0, attribution).plan(
      storeOf(unparsable()).all(),
      nodes,
      T0 + I,
    ).rejected;
    const letter = rejectedPodDeadLetter(rejected!);
    expect(letter).toMatchObject({
      key: podSampleKey({ clusterId: 'conf-cluster', podUid: 'uid-bad' }),
      code: 'GPUM_POD_REJECTED',
      reason: 'model_error',
      message: 'pod runai-team-a/bad not sampled: not a Kubernetes quantity: "lots"',
    });
    expect(JSON.parse(String(letter.value))).toEqual({ kind: 'pod', ...badIdentity });
  });

  it('is rejected for an amount no sample can carry (bytes past a safe integer, the Avro long)', () => {
    // On a node that states no memory nothing caps the request; encoding it would throw in the publisher.
    const huge = pod('huge', T0);
    huge.spec!.containers[0]!.resources!.requests = { cpu: '2', memory: '2E' };
    const plan = new AllocationPlanner(I, 0, attribution).plan(storeOf(huge).all(), nodes, T0 + I);
    expect(plan.samples).toEqual([]);
    expect(plan.rejected.map((r) => [r.name, r.reason, r.detail])).toEqual([
      ['huge', 'invalid_amount', 'memoryBytes 2000000000000000000 is not a safe integer'],
    ]);
  });

  it('accounts each grid point once, backfill included, and says when the same rejection was reported before', () => {
    const planner = new AllocationPlanner(I, 2 * I, attribution);
    const store = storeOf(pod('a', T0), unparsable());
    const first = planner.plan(store.all(), nodes, T0 + 3 * I);
    expect(first.rejected.map((r) => [r.gridPointsMs.map((t) => t - T0), r.repeated])).toEqual([
      [[I, 2 * I, 3 * I], false],
    ]);
    const second = planner.plan(store.all(), nodes, T0 + 4 * I);
    expect(second.rejected.map((r) => [r.gridPointsMs.map((t) => t - T0), r.repeated])).toEqual([
      [[4 * I], true],
    ]);
    expect(second.samples.map((s) => s.podName)).toEqual(['a']);
    // Fixed (the object replaced), it is sampled again from the next point; rejected anew, reported anew.
    store.upsert(pod('bad', T0));
    expect(planner.plan(store.all(), nodes, T0 + 5 * I).samples.map((s) => s.podName)).toEqual(['a', 'bad']);
    expect(planner.plan(store.all(), nodes, T0 + 5 * I).rejected).toEqual([]);
    store.upsert(unparsable());
    expect(planner.plan(store.all(), nodes, T0 + 6 * I).rejected.map((r) => r.repeated)).toEqual([false]);
  });
});

describe('copies of one pod sample from disagreeing replicas', () => {
  const replica = (customers: Record<string, string>, ...pods: V1Pod[]) =>
    new AllocationPlanner(I, 10_000, { ...attribution, projectCustomers: customers }).plan(
      storeOf(...pods).all(),
      nodes,
      T0 + 5_000,
    ).samples;

  async function keysById(...replicas: PodAllocationSample[][]): Promise<Map<string, Set<string>>> {
    const keys = new Map<string, Set<string>>();
    for (const samples of replicas) {
      for (const { key, value } of await publishedMessages('podAllocationSample', podSampleKey, samples)) {
        keys.set(value.id, (keys.get(value.id) ?? new Set()).add(key));
      }
    }
    return keys;
  }

  it('share one key, cluster/pod uid, while the replicas run different PROJECT_CUSTOMERS', async () => {
    const before = replica({ 'team-a': 'acme' }, pod('train', T0));
    const after = replica({ 'team-a': 'globex' }, pod('train', T0));
    expect(new Set([...before, ...after].map((s) => s.subject))).toEqual(new Set(['acme', 'globex']));
    expect(after.map((s) => s.id)).toEqual(before.map((s) => s.id));
    const keys = await keysById(before, after);
    expect(keys.size).toBe(before.length);
    for (const sampleKeys of keys.values()) expect([...sampleKeys]).toEqual(['conf-cluster/uid-train']);
  });

  it('share one key when one replica sees the pod relabelled to another project and the other does not', async () => {
    const relabelled = pod('train', T0, undefined, {
      labels: { project: 'team-b', 'runai/queue': 'team-b', workloadKind: 'Training' },
    });
    const old = replica({}, pod('train', T0));
    const seen = replica({}, relabelled);
    expect([old[0]!.subject, seen[0]!.subject]).toEqual(['team-a', 'team-b']);
    const keys = await keysById(old, seen);
    expect(keys.size).toBe(old.length);
    for (const sampleKeys of keys.values()) expect([...sampleKeys]).toEqual(['conf-cluster/uid-train']);
  });
});
