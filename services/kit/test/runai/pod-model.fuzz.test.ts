import type { V1Node, V1Pod } from '@kubernetes/client-node';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  describeRunaiPod,
  parseQuantity,
  QuantityError,
  ReservationIndex,
  reservationOf,
  splitByFraction,
  type Attribution,
  type RunaiPod,
} from '@gpu-meter/kit/runai';
import { parseScenario, startSimulator } from '@gpu-meter/simulator';
import { fuzz, mutatedJson, weirdValue } from '../../../../test/support/fuzz.js';
import {
  a100Node,
  attribution as fixtureAttribution,
  fractionalPod,
  reservationPod,
  trainingPod,
} from './fixtures.js';

/**
 * Pods and nodes as the informers hand them over, then broken: fields dropped, annotations and labels saying
 * anything (`runai-allocated-gpus: "abc"`, negative, NaN, JSON garbage in runai-mig-device), projects named
 * like Object.prototype members. describeRunaiPod returns a pod with finite, non-negative amounts and string
 * dimensions, or throws QuantityError (its documented error) for a resource quantity that is not one.
 */
const scenario = parseScenario({
  clusterId: 'sim-fuzz',
  startMs: Date.UTC(2030, 0, 1),
  durationMs: 10_000,
  departments: { 'team-a': 'research' },
  customers: { 'team-a': 'acme' },
  nodes: [
    {
      name: 'node-a',
      gpuProduct: 'NVIDIA-A100-SXM4-80GB',
      gpuCount: 4,
      gpuMemoryMiB: 81920,
      mig: [
        {
          gpu: 3,
          instances: [
            { id: 1, profile: '3g.40gb' },
            { id: 2, profile: '1g.10gb' },
          ],
        },
      ],
    },
  ],
  pods: [
    {
      name: 'train',
      project: 'team-a',
      workloadKind: 'Training',
      node: 'node-a',
      gpu: { whole: [0, 1] },
      cpuCores: 4,
      memoryMiB: 16384,
      startMs: 1000,
      endMs: 7000,
    },
    {
      name: 'nb-1',
      project: 'team-b',
      priorityClassName: 'build',
      node: 'node-a',
      gpu: { fraction: 0.5, gpu: 2 },
      cpuCores: 0.5,
      memoryMiB: 2048,
      startMs: 1000,
      endMs: 8000,
      deletedMs: 8000,
    },
    {
      name: 'nb-2',
      project: 'team-b',
      node: 'node-a',
      gpu: { fraction: 0.25, gpu: 2 },
      cpuCores: 1,
      memoryMiB: 1024,
      startMs: 2000,
    },
    {
      name: 'infer',
      project: 'team-c',
      workloadKind: 'Inference',
      node: 'node-a',
      gpu: { mig: { gpu: 3, instance: 2 } },
      startMs: 1000,
      endMs: 6000,
    },
    { name: 'cpu-only', project: 'team-a', node: 'node-a', cpuCores: 2, memoryMiB: 512, startMs: 0 },
  ],
});

const realPods: V1Pod[] = [
  trainingPod(),
  fractionalPod('f', 'uid-f', '0.5', 'g1'),
  reservationPod('r', 'g1', 'GPU-1'),
];
const realNodes: V1Node[] = [a100Node];

/** The simulator's objects over its API, at moments when pods are pending, running, sharing and done. */
beforeAll(async () => {
  const sim = await startSimulator({ scenario, clock: 'manual' });
  try {
    for (const t of [0, 1500, 2500, 6800, 9000]) {
      await sim.setTime(sim.startMs + t);
      const pods = (await (await fetch(`${sim.k8sUrl}/api/v1/pods`)).json()) as { items: V1Pod[] };
      realPods.push(...pods.items);
    }
    const nodes = (await (await fetch(`${sim.k8sUrl}/api/v1/nodes`)).json()) as { items: V1Node[] };
    realNodes.push(...nodes.items);
  } finally {
    await sim.close();
  }
});

const ANNOTATIONS = [
  'runai-allocated-gpus',
  'gpu-fraction',
  'runai-allocated-gpu-memory',
  'gpu-memory',
  'runai-allocated-mig-gpus',
  'runai-mig-device',
  'clusterId',
  'user',
  'run.ai/reserve_for_gpu_index',
];
const LABELS = ['project', 'runai/queue', 'workloadKind', 'runai-gpu-group', 'app'];
const weirdText = fc.oneof(
  fc.constantFrom(
    'abc',
    '-1',
    '-0.5',
    'NaN',
    'Infinity',
    '1e400',
    '1e308',
    '0',
    '',
    ' ',
    '0x10',
    'constructor',
    'toString',
    '__proto__',
  ),
  fc.constantFrom(
    '{',
    '[]',
    'null',
    '"x"',
    '{"name":5}',
    '{"name":"nvidia.com/mig-1g.10gb","gputype":["x"]}',
    '{"profile":""}',
  ),
  fc.string({ maxLength: 12 }),
  weirdValue.map((v) => JSON.stringify(v) ?? ''),
);
/** Resource quantities: the API server refuses negative ones, so only the sign is kept realistic. */
const quantityText = fc.oneof(
  fc.constantFrom(
    '1',
    '100m',
    '1.5Gi',
    '1e3',
    '1e400',
    '1E',
    '.5',
    '5.',
    'abc',
    '',
    '1Ki',
    '2e-3',
    '0.000001n',
    '+1',
  ),
  fc.stringMatching(/^\+?\d{0,3}\.?\d{0,3}([eE][+-]?\d{1,3}|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$/),
);

type Overrides = {
  annotations: Record<string, string>;
  labels: Record<string, string>;
  limits: Record<string, string>;
  cpu?: string;
};
const overrides: fc.Arbitrary<Overrides> = fc.record({
  annotations: fc.dictionary(fc.constantFrom(...ANNOTATIONS), weirdText, { maxKeys: 3 }),
  labels: fc.dictionary(fc.constantFrom(...LABELS), weirdText, { maxKeys: 2 }),
  limits: fc.dictionary(fc.constantFrom('nvidia.com/gpu', 'nvidia.com/mig-1g.10gb', 'cpu'), quantityText, {
    maxKeys: 2,
  }),
  cpu: fc.option(quantityText, { nil: undefined }),
});

function withOverrides(pod: V1Pod, o: Overrides): V1Pod {
  const copy = structuredClone(pod);
  copy.metadata = {
    ...copy.metadata,
    annotations: { ...copy.metadata?.annotations, ...o.annotations },
    labels: { ...copy.metadata?.labels, ...o.labels },
  };
  const container = copy.spec?.containers?.[0];
  if (container) {
    container.resources = {
      ...container.resources,
      limits: { ...container.resources?.limits, ...o.limits },
      ...(o.cpu === undefined ? {} : { requests: { ...container.resources?.requests, cpu: o.cpu } }),
    };
  }
  return copy;
}

const attributions: fc.Arbitrary<Attribution> = fc.constantFrom<Attribution>(fixtureAttribution, {
  clusterId: 'c',
  projectDepartments: JSON.parse('{"team-a":"research","__proto__":"x"}') as Record<string, string>,
  projectCustomers: {},
  fallbackSubject: 'unattributed',
});

/** The API server refuses a negative resource quantity; annotations and labels it takes as they come. */
function acceptedByApiServer(pod: V1Pod): boolean {
  const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  return containers.every((c) =>
    [c.resources?.requests, c.resources?.limits].every((amounts) =>
      Object.values(amounts ?? {}).every((q) => !String(q).trim().startsWith('-')),
    ),
  );
}

const pods = () =>
  fc.oneof(
    fc.tuple(fc.constantFrom(...realPods), overrides).map(([pod, o]) => withOverrides(pod, o)),
    mutatedJson(fc.constantFrom(...realPods), { keepTypes: true }).filter(acceptedByApiServer),
  );
const nodeOrNone = () =>
  fc.option(mutatedJson(fc.constantFrom(...realNodes), { keepTypes: true }), { nil: undefined });

const STRING_FIELDS = [
  'uid',
  'name',
  'namespace',
  'nodeName',
  'clusterId',
  'project',
  'subject',
  'department',
  'queue',
  'workloadType',
  'user',
  'workloadId',
  'gpuType',
] as const;

function expectValid(pod: RunaiPod): void {
  for (const field of STRING_FIELDS) expect(typeof pod[field], field).toBe('string');
  for (const amount of ['gpus', 'gpuMemoryBytes', 'cpuCores', 'memoryBytes'] as const) {
    expect(Number.isFinite(pod[amount]) && pod[amount] >= 0, `${amount} = ${pod[amount]}`).toBe(true);
  }
  // An Avro long in the sample; from annotations, which nothing validates upstream.
  expect(Number.isSafeInteger(pod.gpuMemoryBytes), `gpuMemoryBytes = ${pod.gpuMemoryBytes}`).toBe(true);
  expect(pod.migProfile === null || typeof pod.migProfile === 'string').toBe(true);
  if (pod.span) {
    expect(Number.isFinite(pod.span.startMs)).toBe(true);
    if (pod.span.endMs !== null) expect(pod.span.endMs).toBeGreaterThanOrEqual(pod.span.startMs);
  }
}

describe('describeRunaiPod under mutated pods and nodes', () => {
  it('describes the simulator pods as they are', () => {
    for (const pod of realPods) expectValid(describeRunaiPod(pod, realNodes.at(-1), fixtureAttribution));
  });

  it('finds nothing to correct in the pods the simulator serves on their own nodes', () => {
    const nodes = new Map(realNodes.map((node) => [node.metadata?.name ?? '', node]));
    const placed = realPods.slice(3).filter((pod) => nodes.has(pod.spec?.nodeName ?? ''));
    expect(placed.length).toBeGreaterThan(5);
    for (const pod of placed)
      expect(describeRunaiPod(pod, nodes.get(pod.spec!.nodeName!), fixtureAttribution).inputIssues).toEqual(
        [],
      );
  });

  it('returns finite non-negative amounts and string dimensions, or throws QuantityError', () => {
    fuzz(
      fc.property(pods(), nodeOrNone(), attributions, (pod, node, attribution) => {
        let described: RunaiPod;
        try {
          described = describeRunaiPod(pod, node, attribution);
        } catch (error) {
          expect(error, String(error)).toBeInstanceOf(QuantityError);
          return;
        }
        expectValid(described);
      }),
      1500,
    );
  });
});

describe('parseQuantity under random text', () => {
  it('returns a number or throws QuantityError', () => {
    fuzz(
      fc.property(fc.oneof(quantityText, fc.string({ maxLength: 20 })), (text) => {
        try {
          expect(typeof parseQuantity(text)).toBe('number');
        } catch (error) {
          expect(error).toBeInstanceOf(QuantityError);
        }
      }),
      2000,
    );
  });
});

describe('reservation join under mutated pods', () => {
  it('indexes without throwing and splits devices into shares that sum to 1', () => {
    fuzz(
      fc.property(fc.array(pods(), { maxLength: 6 }), (list) => {
        const index = new ReservationIndex(list);
        for (const pod of list) {
          const reservation = reservationOf(pod);
          if (reservation) expect(index.forPod(reservation.namespace, reservation.name)).toBeDefined();
        }
        // As the collectors read fractions: a finite number, else none.
        const fraction = (pod: V1Pod) => {
          const value = Number(pod.metadata?.annotations?.['runai-allocated-gpus']);
          return Number.isFinite(value) ? value : 0;
        };
        const shares = splitByFraction(list, fraction, (pod) => pod.metadata?.uid ?? '');
        for (const { share } of shares) expect(share >= 0 && share <= 1, `share ${share}`).toBe(true);
        if (shares.length > 0)
          expect(Math.abs(shares.reduce((sum, s) => sum + s.share, 0) - 1)).toBeLessThan(1e-9);
      }),
      500,
    );
  });
});
