import { describe, expect, it, onTestFinished } from 'vitest';
import { ClusterState } from '../src/cluster-state.js';
import { buildModel } from '../src/model.js';
import { startSimulator } from '../src/simulator.js';
import { buildTimeline } from '../src/timeline.js';
import { scenario, T0 } from './helpers.js';

const s = scenario({
  durationMs: 20_000,
  nodes: [{ name: 'n1', gpuProduct: 'NVIDIA-A100-SXM4-80GB', gpuCount: 1, gpuMemoryMiB: 81_920 }],
  pods: [
    {
      name: 'train',
      project: 'pa',
      workloadKind: 'Training',
      node: 'n1',
      gpu: { whole: [0] },
      cpuCores: 1,
      startMs: 0,
      endMs: 10_000,
    },
  ],
});

const timeline = (startMs: number) =>
  buildTimeline({ model: buildModel(s), startMs, dcgmHost: '127.0.0.1', dcgmPort: 1 });
const train = <T extends { metadata: { name?: string } }>(pods: T[]) =>
  pods.filter((p) => p.metadata.name === 'train');
const startedAt = (state: ClusterState) =>
  train(state.list('Pod')).map((p) => (p.status as { startTime?: string } | undefined)?.startTime);

describe('a postponed scenario start', () => {
  it('replaces the pending changes while only the objects from before the start were applied', () => {
    const state = new ClusterState(timeline(T0));
    state.advanceTo(-1);
    expect(state.list('Node')).toHaveLength(1);
    expect(train(state.list('Pod'))).toHaveLength(0);
    state.replacePending(timeline(T0 + 60_000));
    state.advanceTo(0);
    expect(startedAt(state)).toEqual(['2030-01-01T00:01:00Z']);
  });

  it('refuses once a change of the scenario proper was applied', () => {
    const state = new ClusterState(timeline(T0));
    state.advanceTo(0);
    expect(() => state.replacePending(timeline(T0 + 60_000))).toThrow(/has begun/);
  });

  it('moves a live simulator: nothing of the scenario before the new start, and no postponing after it', async () => {
    // Real clock, so real (short) waits: the pod must appear at the new start, not at the old one.
    const sim = await startSimulator({ scenario: s, startMs: Date.now() + 300, clock: 'real' });
    onTestFinished(() => sim.close());
    const laterMs = sim.startMs + 700;
    sim.postpone(laterMs);
    expect(sim.startMs).toBe(laterMs);
    const pods = async () =>
      (
        (await (await fetch(`${sim.k8sUrl}/api/v1/pods`)).json()) as {
          items: Array<{ metadata: { name?: string } }>;
        }
      ).items;
    await new Promise((resolve) => setTimeout(resolve, laterMs - 300 - Date.now()));
    expect(train(await pods())).toHaveLength(0);
    await new Promise((resolve) => setTimeout(resolve, laterMs + 200 - Date.now()));
    expect(train(await pods())).toHaveLength(1);
    expect(() => sim.postpone(laterMs + 10_000)).toThrow(/too late to postpone/);
  });
});
