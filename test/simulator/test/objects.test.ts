import { describe, expect, it, onTestFinished } from 'vitest';
import { buildModel, gpuUuid, migUuid } from '../src/model.js';
import { podObject, type ObjectContext } from '../src/k8s-objects.js';
import { startSimulator } from '../src/simulator.js';
import { scenario, T0 } from './helpers.js';

const s = scenario({
  durationMs: 30_000,
  nodes: [
    {
      name: 'm',
      gpuProduct: 'NVIDIA-H100-80GB-HBM3',
      gpuCount: 2,
      gpuMemoryMiB: 81_559,
      mig: [{ gpu: 0, instances: [{ id: 2, profile: '1g.10gb' }] }],
    },
  ],
  pods: [
    {
      name: 'slice',
      project: 'p',
      node: 'm',
      gpu: { mig: { gpu: 0, instance: 2 } },
      startMs: 0,
      endMs: 5000,
    },
    {
      name: 'odd',
      project: 'p',
      namespace: 'team-x',
      priorityClassName: 'train',
      node: 'm',
      gpu: { whole: [1] },
      startMs: 1000,
      omit: ['project', 'user'],
      labels: { extra: 'yes' },
    },
  ],
});
const model = buildModel(s);
const ctx: ObjectContext = { model, startMs: T0, dcgmHost: '127.0.0.1', dcgmPort: 9400 };

describe('pod objects', () => {
  it('describe a MIG slice with the Run:ai MIG annotations and a mig resource limit', () => {
    const pod = podObject(ctx, model.pods[0]!, 'running') as unknown as {
      metadata: { annotations: Record<string, string> };
      spec: { containers: { resources: { limits: object } }[] };
    };
    const a = pod.metadata.annotations;
    expect(a['runai-allocated-mig-gpus']).toBe(String(1 / 7));
    expect(a['runai-allocated-gpu-memory']).toBe('10240');
    expect(JSON.parse(a['runai-mig-device']!)).toEqual({
      name: 'nvidia.com/mig-1g.10gb',
      position: 2,
      gpuamount: 1,
      gputype: 'NVIDIA-H100-80GB-HBM3',
      deviceUUID: migUuid(s, 'm', 0, 2),
      gpuIndex: 0,
      gpuUUID: gpuUuid(s, 'm', 0),
    });
    expect(pod.spec.containers[0]!.resources.limits).toEqual({ 'nvidia.com/mig-1g.10gb': '1' });
  });

  it('leave out omitted metadata and add extra labels, for attribution fallbacks', () => {
    const pod = podObject(ctx, model.pods[1]!, 'running') as unknown as {
      metadata: { namespace: string; labels: object; annotations: object };
    };
    expect(pod.metadata.namespace).toBe('team-x');
    expect(pod.metadata.labels).toEqual({ 'runai/queue': 'p', extra: 'yes' });
    expect(Object.keys(pod.metadata.annotations)).not.toContain('user');
  });

  it('carry no allocation annotations and no node while Pending', () => {
    const pod = podObject(ctx, model.pods[1]!, 'pending') as unknown as {
      metadata: { annotations: object };
      spec: object;
      status: object;
    };
    expect(pod.status).toMatchObject({ phase: 'Pending' });
    expect(pod.spec).not.toHaveProperty('nodeName');
    expect(pod.status).not.toHaveProperty('startTime');
    expect(Object.keys(pod.metadata.annotations)).not.toContain('runai-allocated-gpus');
  });
});

describe('timestamps', () => {
  it('are RFC3339 seconds like the real API, or milliseconds when the scenario asks', () => {
    const base = {
      durationMs: 5000,
      nodes: [{ name: 'c', gpuProduct: 'none', gpuCount: 0, gpuMemoryMiB: 1 }],
    };
    const ms = scenario({
      ...base,
      timestampPrecision: 'ms',
      pods: [{ name: 'a', project: 'p', node: 'c', startMs: 1500 }],
    });
    const msModel = buildModel(ms);
    const pod = podObject({ ...ctx, model: msModel }, msModel.pods[0]!, 'running') as unknown as {
      status: { startTime: string };
    };
    expect(pod.status.startTime).toBe('2030-01-01T00:00:01.500Z');
    const running = podObject(ctx, model.pods[1]!, 'running') as unknown as { status: { startTime: string } };
    expect(running.status.startTime).toBe('2030-01-01T00:00:01Z');
  });
});

describe('real clock', () => {
  it('applies every change already due when it starts', async () => {
    // A scenario whose whole life lies in the past: nothing here depends on how fast the test runs.
    const sim = await startSimulator({ scenario: s, clock: 'real', startMs: Date.now() - 60_000 });
    onTestFinished(() => sim.close());
    const pods = (await (await fetch(`${sim.k8sUrl}/api/v1/namespaces/runai-p/pods`)).json()) as {
      items: { status: { phase: string } }[];
    };
    expect(pods.items.map((p) => p.status.phase)).toEqual(['Succeeded']);
    await expect(sim.advance(1)).rejects.toThrow(/manual clock/);
  });
});
