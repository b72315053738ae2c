import parsePrometheus from 'parse-prometheus-text-format';
import { describe, expect, it, onTestFinished } from 'vitest';
import { buildModel } from '../src/model.js';
import { renderMetrics } from '../src/dcgm.js';
import { startSimulator } from '../src/simulator.js';
import { scenario, T0 } from './helpers.js';

const s = scenario({
  durationMs: 60_000,
  nodes: [
    {
      name: 'n1',
      gpuProduct: 'NVIDIA-A100-SXM4-80GB',
      gpuCount: 3,
      gpuMemoryMiB: 81_920,
      mig: [
        {
          gpu: 2,
          instances: [
            { id: 1, profile: '1g.10gb' },
            { id: 2, profile: '3g.40gb' },
          ],
        },
      ],
    },
  ],
  pods: [
    { name: 'whole', project: 'pa', node: 'n1', gpu: { whole: [0] }, startMs: 0, endMs: 30_000 },
    { name: 'frac-a', project: 'pa', node: 'n1', gpu: { fraction: 0.5, gpu: 1 }, startMs: 0, endMs: 30_000 },
    {
      name: 'frac-b',
      project: 'pb',
      node: 'n1',
      gpu: { fraction: 0.5, gpu: 1 },
      startMs: 10_000,
      endMs: 40_000,
    },
    { name: 'slice', project: 'pb', node: 'n1', gpu: { mig: { gpu: 2, instance: 2 } }, startMs: 0 },
  ],
  gpuMetrics: [
    {
      node: 'n1',
      gpu: 0,
      segments: [
        {
          fromMs: 0,
          nvlinkTxBytesPerSec: 2e9,
          nvlinkRxBytesPerSec: 1e9,
          pcieTxBytesPerSec: 5e8,
          pcieRxBytesPerSec: 4e8,
          fbUsedMiB: 1234,
        },
        { fromMs: 20_000, nvlinkTxBytesPerSec: 7 },
      ],
    },
    { node: 'n1', gpu: 1, segments: [{ fromMs: 0, pcieRxBytesPerSec: 3e8 }] },
    {
      node: 'n1',
      gpu: 2,
      migInstance: 2,
      segments: [{ fromMs: 0, pcieTxBytesPerSec: 1e6, fbUsedMiB: 9000 }],
    },
  ],
});
const model = buildModel(s);

function series(text: string, metric: string) {
  const family = parsePrometheus(text).find((f) => f.name === metric);
  expect(family).toBeDefined();
  return family!.metrics.map((m) => ({ value: Number(m.value), labels: m.labels ?? {} }));
}

describe('fake DCGM exporter text', () => {
  it('has the real metric names, types and units', () => {
    const text = renderMetrics(model, 'n1', 15_000)!;
    const families = parsePrometheus(text);
    expect(families.map((f) => [f.name, f.type])).toEqual([
      ['DCGM_FI_PROF_NVLINK_TX_BYTES', 'GAUGE'],
      ['DCGM_FI_PROF_NVLINK_RX_BYTES', 'GAUGE'],
      ['DCGM_FI_PROF_PCIE_TX_BYTES', 'GAUGE'],
      ['DCGM_FI_PROF_PCIE_RX_BYTES', 'GAUGE'],
      ['DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL', 'COUNTER'],
      ['DCGM_FI_DEV_FB_USED', 'GAUGE'],
    ]);
    const gpu0 = (metric: string) => series(text, metric).find((x) => x.labels.gpu === '0')!.value;
    expect(gpu0('DCGM_FI_PROF_NVLINK_TX_BYTES')).toBe(2e9); // bytes/s
    expect(gpu0('DCGM_FI_PROF_PCIE_RX_BYTES')).toBe(4e8);
    expect(gpu0('DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL')).toBe(3000); // (2e9 + 1e9) B/s in MB/s
    expect(gpu0('DCGM_FI_DEV_FB_USED')).toBe(1234); // MiB
  });

  it('labels a whole-GPU series with its pod, a shared GPU with the reservation pod, a free one with none', () => {
    const fb = series(renderMetrics(model, 'n1', 15_000)!, 'DCGM_FI_DEV_FB_USED');
    const gpu0 = fb.find((x) => x.labels.gpu === '0')!.labels;
    expect(gpu0).toEqual({
      gpu: '0',
      UUID: model.devices[0]!.gpuUuid,
      device: 'nvidia0',
      modelName: 'NVIDIA A100-SXM4-80GB',
      Hostname: 'n1',
      DCGM_FI_DRIVER_VERSION: '535.104.05',
      container: 'main',
      namespace: 'runai-pa',
      pod: 'whole',
    });
    const gpu1 = fb.find((x) => x.labels.gpu === '1')!.labels;
    expect(gpu1).toMatchObject({
      pod: 'runai-reservation-gpu-n1-1-0',
      namespace: 'runai-reservation',
      container: 'runai-reservation',
    });
    expect(model.reservations[0]!.gpuUuid).toBe(gpu1.UUID);
    // After the whole-GPU pod ended, GPU 0 has no pod labels; the last sharer keeps the reservation on GPU 1.
    const later = series(renderMetrics(model, 'n1', 35_000)!, 'DCGM_FI_DEV_FB_USED');
    expect(Object.keys(later.find((x) => x.labels.gpu === '0')!.labels)).not.toContain('pod');
    expect(later.find((x) => x.labels.gpu === '1')!.labels.pod).toBe('runai-reservation-gpu-n1-1-0');
    const gone = series(renderMetrics(model, 'n1', 45_000)!, 'DCGM_FI_DEV_FB_USED');
    expect(gone.find((x) => x.labels.gpu === '1')!.labels.pod).toBeUndefined();
  });

  it('reports MIG instances with GPU_I_PROFILE / GPU_I_ID instead of the parent', () => {
    const fb = series(renderMetrics(model, 'n1', 15_000)!, 'DCGM_FI_DEV_FB_USED').filter(
      (x) => x.labels.gpu === '2',
    );
    expect(fb.map((x) => [x.labels.GPU_I_PROFILE, x.labels.GPU_I_ID, x.labels.pod, x.value])).toEqual([
      ['1g.10gb', '1', undefined, 0],
      ['3g.40gb', '2', 'slice', 9000],
    ]);
  });

  it('reports the rates in effect lagMs earlier (a scrape just after a grid point reads the interval it closes)', () => {
    const at = (t: number) =>
      series(renderMetrics(model, 'n1', t)!, 'DCGM_FI_PROF_NVLINK_TX_BYTES').find(
        (x) => x.labels.gpu === '0',
      )!.value;
    expect(at(20_000)).toBe(2e9); // segment of [0, 20 s) still reported until 21 s
    expect(at(20_999)).toBe(2e9);
    expect(at(21_000)).toBe(7);
  });

  it('can use the lowercase hostname label of newer exporters', () => {
    const lower = buildModel({ ...s, dcgm: { hostnameLabel: 'hostname', lagMs: 1000 } });
    const labels = series(renderMetrics(lower, 'n1', 0)!, 'DCGM_FI_DEV_FB_USED')[0]!.labels;
    expect(labels.hostname).toBe('n1');
    expect(labels.Hostname).toBeUndefined();
  });
});

describe('fake DCGM exporter over HTTP', () => {
  it('serves /metrics/<node> at the simulator time and 404 for an unknown node', async () => {
    const sim = await startSimulator({ scenario: s });
    onTestFinished(() => sim.close());
    await sim.setTime(T0 + 35_000);
    const res = await fetch(sim.dcgmUrl('n1'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const gpu0 = series(await res.text(), 'DCGM_FI_PROF_NVLINK_TX_BYTES').find((x) => x.labels.gpu === '0')!;
    expect(gpu0.value).toBe(7);
    expect(gpu0.labels.pod).toBeUndefined();
    expect((await fetch(sim.dcgmUrl('nope'))).status).toBe(404);
  });

  it('serves extra pages under /pages/<name> at the simulator time and counts requests per path', async () => {
    const sim = await startSimulator({ scenario: s });
    onTestFinished(() => sim.close());
    const path = sim.serveDcgmPage('forged one', (offsetMs) => `# page at ${offsetMs}\n`);
    expect(path).toBe('/pages/forged%20one');
    await sim.setTime(T0 + 12_000);
    const res = await fetch(`${sim.dcgmBaseUrl}${path}?x=1`);
    expect([res.status, await res.text()]).toEqual([200, '# page at 12000\n']);
    expect((await fetch(`${sim.dcgmBaseUrl}/pages/other`)).status).toBe(404);
    expect([
      sim.dcgmRequests(path),
      sim.dcgmRequests('/pages/other'),
      sim.dcgmRequests('/pages/none'),
    ]).toEqual([1, 1, 0]);
  });
});
