import { readdirSync } from 'node:fs';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { describeRunaiPod } from '@gpu-meter/kit/runai';
import { describe, expect, it } from 'vitest';
import { nodeObject } from '../src/k8s-infra-objects.js';
import { podObject, type ObjectContext } from '../src/k8s-objects.js';
import { buildModel } from '../src/model.js';
import { loadScenario, type Scenario, type ScenarioInput } from '../src/scenario.js';
import { expectedSamples } from '../src/truth.js';
import { scenario, T0 } from './helpers.js';

/**
 * The truth bills each pod under the dimensions a collector reads off the pod the fake API serves: the kit's
 * pod model applied to the simulator's own pod and node objects must give the truth's dimensions.
 */
const FALLBACK = 'unattributed';
const I = 10_000;

function servedDimensions(s: Scenario) {
  const model = buildModel(s);
  const ctx: ObjectContext = { model, startMs: T0, dcgmHost: '127.0.0.1', dcgmPort: 9400 };
  return model.pods.map((p) => {
    const pod = podObject(ctx, p, 'running') as unknown as V1Pod;
    const node = nodeObject(ctx, p.node) as unknown as V1Node;
    const seen = describeRunaiPod(pod, node, {
      clusterId: s.clusterId,
      projectDepartments: s.departments,
      projectCustomers: s.customers,
      fallbackSubject: FALLBACK,
    });
    return {
      name: p.pod.name,
      subject: seen.subject,
      project: seen.project,
      department: seen.department,
      workloadType: seen.workloadType,
      gpuType: seen.gpuType,
      queue: seen.queue,
      migProfile: seen.migProfile,
    };
  });
}

function truthDimensions(s: Scenario) {
  const { allocation } = expectedSamples(s, {
    samplingIntervalMs: I,
    startMs: T0,
    fallbackSubject: FALLBACK,
  });
  // Pods that run outside the billed range have no sample (and nothing to compare).
  return s.pods.flatMap((pod) => {
    const first = allocation.find((a) => a.podName === pod.name);
    if (!first) return [];
    const { subject, project, department, workloadType, gpuType, queue, migProfile } = first;
    return [{ name: pod.name, subject, project, department, workloadType, gpuType, queue, migProfile }];
  });
}

const node = {
  name: 'n1',
  gpuProduct: 'NVIDIA-A100-SXM4-80GB',
  gpuCount: 4,
  gpuMemoryMiB: 1000,
  mig: [{ gpu: 3, instances: [{ id: 1, profile: '3g.40gb' }] }],
};
const base = { node: 'n1', cpuCores: 1, memoryMiB: 10, startMs: 0, endMs: 20_000 };
type PodInput = NonNullable<ScenarioInput['pods']>[number];
const oddPods = (pods: PodInput[]) =>
  scenario({
    durationMs: 20_000,
    departments: { pa: 'research', pb: 'ops' },
    customers: { pb: 'globex' },
    nodes: [node],
    pods,
  });

describe('truth dimensions equal what the collector reads off the served pod', () => {
  it('takes the workload kind from extra labels', () => {
    const s = oddPods([
      { ...base, name: 'kind-in-labels', project: 'pa', labels: { workloadKind: 'Inference' } },
    ]);
    expect(truthDimensions(s).map((d) => d.workloadType)).toEqual(['Inference']);
    expect(truthDimensions(s)).toEqual(servedDimensions(s));
  });

  it('lets an extra workloadKind label win over the field, as it does on the served pod', () => {
    const s = oddPods([
      {
        ...base,
        name: 'relabelled',
        project: 'pa',
        workloadKind: 'Training',
        labels: { workloadKind: 'Interactive' },
      },
    ]);
    expect(truthDimensions(s).map((d) => d.workloadType)).toEqual(['Interactive']);
    expect(truthDimensions(s)).toEqual(servedDimensions(s));
  });

  it('ignores a workloadKind label that is no Run:ai kind and falls back to the priority class', () => {
    const s = oddPods([
      {
        ...base,
        name: 'odd-kind',
        project: 'pa',
        priorityClassName: 'train',
        labels: { workloadKind: 'Batch' },
      },
      { ...base, name: 'odd-kind-no-class', project: 'pa', labels: { workloadKind: 'Batch' } },
    ]);
    expect(truthDimensions(s).map((d) => d.workloadType)).toEqual(['Training', 'Unknown']);
    expect(truthDimensions(s)).toEqual(servedDimensions(s));
  });

  it('attributes project, subject and department from labels, namespace and queue', () => {
    const s = oddPods([
      // project label rewritten through extra labels: billed to pb (customer globex, department ops)
      { ...base, name: 'label-project', project: 'pa', labels: { project: 'pb' } },
      // no project label: the runai-<project> namespace
      { ...base, name: 'from-namespace', project: 'pa', namespace: 'runai-pb', omit: ['project'] },
      // no label, a namespace that names no project: the queue label
      { ...base, name: 'from-queue', project: 'pa', namespace: 'jobs', queue: 'pb', omit: ['project'] },
      // nothing: the fallback subject
      { ...base, name: 'nothing', project: 'pa', namespace: 'jobs', omit: ['project', 'runai/queue'] },
      // a bare runai- namespace names no project
      { ...base, name: 'bare-prefix', project: 'pa', namespace: 'runai-', queue: 'pb', omit: ['project'] },
    ]);
    expect(truthDimensions(s).map((d) => [d.subject, d.department])).toEqual([
      ['globex', 'ops'],
      ['globex', 'ops'],
      ['globex', 'ops'],
      [FALLBACK, ''],
      ['globex', 'ops'],
    ]);
    expect(truthDimensions(s)).toEqual(servedDimensions(s));
  });

  it('bills a project named like an Object.prototype member to itself, with no department', () => {
    const s = oddPods([
      { ...base, name: 'proto-1', project: 'constructor' },
      { ...base, name: 'proto-2', project: 'toString' },
    ]);
    expect(truthDimensions(s).map((d) => [d.subject, d.department])).toEqual([
      ['constructor', ''],
      ['toString', ''],
    ]);
    expect(truthDimensions(s)).toEqual(servedDimensions(s));
  });

  it('gives whole, fractional, MIG and CPU-only pods the GPU type and MIG profile the collector reads', () => {
    const s = oddPods([
      { ...base, name: 'whole', project: 'pa', gpu: { whole: [0] } },
      { ...base, name: 'fraction', project: 'pa', gpu: { fraction: 0.5, gpu: 1 } },
      { ...base, name: 'by-memory', project: 'pa', gpu: { fraction: 0.25, gpu: 2, requestedBy: 'memory' } },
      { ...base, name: 'mig', project: 'pb', gpu: { mig: { gpu: 3, instance: 1 } } },
      { ...base, name: 'cpu-only', project: 'pb' },
    ]);
    expect(truthDimensions(s).map((d) => [d.gpuType, d.migProfile])).toEqual([
      ['NVIDIA-A100-SXM4-80GB', null],
      ['NVIDIA-A100-SXM4-80GB', null],
      ['NVIDIA-A100-SXM4-80GB', null],
      ['NVIDIA-A100-SXM4-80GB', '3g.40gb'],
      ['', null],
    ]);
    expect(truthDimensions(s)).toEqual(servedDimensions(s));
  });

  const dir = new URL('../../../test/scenarios/', import.meta.url);
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    it(`agrees on every pod of test/scenarios/${file}`, () => {
      const s = loadScenario(new URL(file, dir).pathname);
      const truth = truthDimensions(s);
      expect(truth.length).toBeGreaterThan(0);
      expect(truth).toEqual(servedDimensions(s).filter((d) => truth.some((t) => t.name === d.name)));
    });
  }
});
