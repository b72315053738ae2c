import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadScenario, parseScenario, ScenarioError } from '../src/scenario.js';

const node = { name: 'n1', gpuProduct: 'NVIDIA-A100-SXM4-80GB', gpuCount: 2, gpuMemoryMiB: 81_920 };
const pod = { name: 'p1', project: 'pa', node: 'n1', startMs: 0 };

function problems(json: unknown): string[] {
  try {
    parseScenario(json);
  } catch (error) {
    expect(error).toBeInstanceOf(ScenarioError);
    return [...(error as ScenarioError).problems];
  }
  throw new Error('expected the scenario to be rejected');
}

describe('scenario validation', () => {
  it('names the JSON path of a shape error', () => {
    expect(problems({ clusterId: 'c', nodes: [{ ...node, gpuCount: -1 }] })).toEqual([
      'nodes[0].gpuCount: Too small: expected number to be >=0',
    ]);
    expect(
      problems({ clusterId: 'c', nodes: [node], pods: [{ ...pod, gpu: { fraction: 1.5, gpu: 0 } }] })[0],
    ).toMatch(/^pods\[0\]\.gpu/);
    expect(problems({ nodes: [node] })).toEqual([
      'clusterId: Invalid input: expected string, received undefined',
    ]);
    expect(problems({ clusterId: 'c', nodes: [node], pods: [{ ...pod, colour: 'red' }] })).toEqual([
      'pods[0]: Unrecognized key: "colour"',
    ]);
  });

  it('reports cross-field problems with their paths', () => {
    const bad = {
      clusterId: 'c',
      nodes: [node],
      pods: [
        { ...pod, gpu: { whole: [0, 5] } },
        { ...pod, name: 'p2', node: 'nope' },
        { ...pod, name: 'p3', startMs: 5000, endMs: 4000 },
        { ...pod, name: 'p4', startMs: 1500 },
      ],
      gpuMetrics: [{ node: 'n1', gpu: 0, segments: [{ fromMs: 10 }, { fromMs: 5 }] }],
    };
    expect(problems(bad)).toEqual([
      'pods[0].gpu: GPU index 5 is out of range for node n1 (2 GPUs)',
      'pods[1].node: no node named nope',
      'pods[2].endMs: must be > startMs (5000)',
      'pods[3].startMs: 1500 is not a whole second (timestampPrecision "s", as the Kubernetes API)',
      "gpuMetrics[0].segments[1].fromMs: must be greater than the previous segment's",
    ]);
  });

  it('takes a graceful delete only of a running pod, and a grace period only with one', () => {
    const cpu = (name: string, extra: object) => ({ ...pod, name, startMs: 10_000, ...extra });
    expect(
      problems({
        clusterId: 'c',
        nodes: [node],
        pods: [
          cpu('p1', { deleteRequestedMs: 5_000 }),
          cpu('p2', { deleteRequestedMs: 20_000, endMs: 20_000 }),
          cpu('p3', { gracePeriodSeconds: 10 }),
          cpu('p4', { deleteRequestedMs: 12_500 }),
        ],
      }),
    ).toEqual([
      'pods[0].deleteRequestedMs: must be >= startMs (10000)',
      "pods[1].deleteRequestedMs: must be < endMs (20000); a finished pod's delete is deletedMs",
      'pods[2].gracePeriodSeconds: only with deleteRequestedMs (a grace-0 delete is deletedMs alone)',
      'pods[3].deleteRequestedMs: 12500 is not a whole second (timestampPrecision "s", as the Kubernetes API)',
    ]);
  });

  it('rejects two pods on one whole GPU at once, and over-committed fractions', () => {
    expect(
      problems({
        clusterId: 'c',
        nodes: [node],
        pods: [
          { ...pod, gpu: { whole: [0] }, endMs: 10_000 },
          { ...pod, name: 'p2', gpu: { fraction: 0.5, gpu: 0 }, startMs: 5000 },
        ],
      }),
    ).toEqual(['pods[1].gpu: p2 uses n1/0 while p1 (pods[0]) holds it']);
    expect(
      problems({
        clusterId: 'c',
        nodes: [node],
        pods: [
          { ...pod, gpu: { fraction: 0.5, gpu: 1 } },
          { ...pod, name: 'p2', gpu: { fraction: 0.75, gpu: 1 }, startMs: 1000 },
        ],
      }),
    ).toEqual(['pods: fractions on n1/1 sum to 1.25 > 1 at offset 1000']);
  });

  it('checks MIG placement', () => {
    const mig = { ...node, mig: [{ gpu: 1, instances: [{ id: 1, profile: '1g.10gb' }] }] };
    expect(
      problems({
        clusterId: 'c',
        nodes: [mig],
        pods: [
          { ...pod, gpu: { whole: [1] } },
          { ...pod, name: 'p2', gpu: { mig: { gpu: 1, instance: 9 } } },
          { ...pod, name: 'p3', gpu: { mig: { gpu: 0, instance: 1 } } },
        ],
      }),
    ).toEqual([
      'pods[0].gpu: GPU 1 of node n1 is MIG-partitioned: only MIG pods may use it',
      'pods[1].gpu.mig.instance: GPU 1 of node n1 has no MIG instance 9',
      'pods[2].gpu: GPU 0 of node n1 is not MIG-partitioned',
    ]);
  });

  it('fills defaults and derives the duration', () => {
    const s = parseScenario({
      clusterId: 'c',
      nodes: [node],
      pods: [{ ...pod, endMs: 30_000, deletedMs: 31_000 }],
    });
    expect(s.durationMs).toBe(31_000);
    expect(s.dcgm).toEqual({ hostnameLabel: 'Hostname', lagMs: 1000 });
    expect(s.pods[0]).toMatchObject({ endPhase: 'Succeeded', cpuCores: 0, user: '' });
  });

  it('says which file failed to parse', () => {
    expect(() => loadScenario('/nonexistent/x.json')).toThrow(/\/nonexistent\/x\.json: ENOENT/);
  });

  it('accepts every example scenario', () => {
    const dir = new URL('../../../test/scenarios/', import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) expect(loadScenario(new URL(f, dir).pathname).pods.length).toBeGreaterThan(0);
  });
});
