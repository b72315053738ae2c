import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadScenario } from '../src/scenario.js';
import { expectedSamples, expectedTotals, QUANTITIES, type TotalsRow } from '../src/truth.js';
import { expectClose, scenario, T0 } from './helpers.js';

const MIB = 1_048_576;
const row = (rows: TotalsRow[], subject: string, extra: Partial<TotalsRow> = {}) => {
  const found = rows.filter(
    (r) => r.subject === subject && Object.entries(extra).every(([k, v]) => r[k as keyof TotalsRow] === v),
  );
  expect(found).toHaveLength(1);
  return found[0]!;
};

// One node, two GPUs of 1000 MiB; a whole-GPU pod runs [0 s, 25 s) and ends between grid points (10 s grid).
const wholeGpu = scenario({
  durationMs: 40_000,
  departments: { pa: 'd1' },
  nodes: [{ name: 'n1', gpuProduct: 'NVIDIA-A100-SXM4-80GB', gpuCount: 2, gpuMemoryMiB: 1000 }],
  pods: [
    {
      name: 'p1',
      project: 'pa',
      workloadKind: 'Training',
      node: 'n1',
      gpu: { whole: [0] },
      cpuCores: 2,
      memoryMiB: 100,
      startMs: 0,
      endMs: 25_000,
    },
  ],
  gpuMetrics: [{ node: 'n1', gpu: 0, segments: [{ fromMs: 0, pcieTxBytesPerSec: 1000, fbUsedMiB: 10 }] }],
});

describe('ground truth: a whole-GPU pod ending between grid points', () => {
  it('bills the running span to the millisecond', () => {
    const t = expectedTotals(wholeGpu, { samplingIntervalMs: 10_000 });
    expect([t.billedFromMs, t.billedToMs]).toEqual([T0, T0 + 40_000]);
    const p1 = row(t.totals, 'pa');
    expect(p1).toMatchObject({
      project: 'pa',
      department: 'd1',
      workloadType: 'Training',
      gpuType: 'NVIDIA-A100-SXM4-80GB',
    });
    expect(p1.gpuAllocationSeconds).toBe(25); // 1 GPU x 25 s
    expect(p1.gpuMemoryAllocatedByteSeconds).toBe(26_214_400_000); // 1000 MiB x 2^20 x 25 s
    expect(p1.cpuCoreSeconds).toBe(50); // 2 cores x 25 s
    expect(p1.memoryByteSeconds).toBe(2_621_440_000); // 100 MiB x 2^20 x 25 s
    expect(p1.pcieTxBytes).toBe(25_000); // 1000 B/s x 25 s held
    expect(p1.gpuMemoryUsedByteSeconds).toBe(262_144_000); // 10 MiB x 2^20 x 25 s
    expect(p1.sampleCount).toBe(6); // allocation at 10, 20, 30 s + bandwidth at 10, 20, 30 s
  });

  it('gives the unheld rest of the interval to unallocated', () => {
    const t = expectedTotals(wholeGpu, { samplingIntervalMs: 10_000 });
    const free = row(t.totals, 'unallocated');
    expect(free).toMatchObject({
      project: '',
      department: '',
      workloadType: 'Unknown',
      gpuType: 'NVIDIA-A100-SXM4-80GB',
    });
    expect(free.pcieTxBytes).toBe(15_000); // GPU 0 free [25 s, 40 s) x 1000 B/s
    expect(free.gpuMemoryUsedByteSeconds).toBe(157_286_400); // 10 MiB x 2^20 x 15 s
    expect(free.gpuAllocationSeconds).toBe(0);
    expect(free.sampleCount).toBe(6); // GPU 0 at 30 s, 40 s; GPU 1 at 10, 20, 30, 40 s
  });

  it('lists the clipped allocation samples', () => {
    const s = expectedSamples(wholeGpu, { samplingIntervalMs: 10_000 });
    expect(s.allocation.map((a) => [a.observedAtMs - T0, a.spanStartMs - T0, a.spanEndMs - T0])).toEqual([
      [10_000, 0, 10_000],
      [20_000, 10_000, 20_000],
      [30_000, 20_000, 25_000],
    ]);
    expect(s.allocation[0]).toMatchObject({
      podName: 'p1',
      namespace: 'runai-pa',
      gpus: 1,
      gpuMemoryBytes: 1000 * MIB,
      migProfile: null,
    });
    const onGpu0 = s.bandwidth.filter((b) => b.gpuIndex === 0 && b.observedAtMs === T0 + 30_000);
    expect(onGpu0.map((b) => [b.subject, b.spanStartMs - T0, b.spanEndMs - T0, b.pcieTxBytes])).toEqual([
      ['pa', 20_000, 25_000, 5000],
      ['unallocated', 25_000, 30_000, 5000],
    ]);
  });

  it('splits by window overlap', () => {
    const t = expectedTotals(wholeGpu, { samplingIntervalMs: 10_000, windowMs: 20_000 });
    const p1 = t.windows!.filter((w) => w.subject === 'pa');
    expect(
      p1.map((w) => [w.windowStartMs - T0, w.gpuAllocationSeconds, w.pcieTxBytes, w.sampleCount]),
    ).toEqual([
      [0, 20, 20_000, 4], // [0, 20 s): 2 allocation + 2 bandwidth samples
      [20_000, 5, 5000, 2], // [20 s, 25 s)
    ]);
    const free = t.windows!.filter((w) => w.subject === 'unallocated');
    expect(free.map((w) => [w.windowStartMs - T0, w.pcieTxBytes, w.sampleCount])).toEqual([
      [0, 0, 2], // GPU 1 at 10 s, 20 s (zero traffic)
      [20_000, 15_000, 4], // GPU 0 at 30 s, 40 s; GPU 1 at 30 s, 40 s
    ]);
  });

  it('bills only [ceil(from), floor(to)) on the grid', () => {
    const t = expectedTotals(wholeGpu, { samplingIntervalMs: 10_000, fromMs: T0 + 5000, toMs: T0 + 27_000 });
    expect([t.billedFromMs - T0, t.billedToMs - T0]).toEqual([10_000, 20_000]);
    expect(row(t.totals, 'pa').gpuAllocationSeconds).toBe(10);
  });
});

describe('ground truth: fractional sharers split one GPU by fraction', () => {
  // a (0.5) runs [0, 30 s); b (0.25, 20000 MiB) runs [10 s, 30 s). GPU 0 sends 3000 B/s NVLink, uses 30 MiB.
  const frac = scenario({
    durationMs: 40_000,
    customers: { pa: 'cust' },
    nodes: [{ name: 'n1', gpuProduct: 'NVIDIA-A100-SXM4-80GB', gpuCount: 1, gpuMemoryMiB: 80_000 }],
    pods: [
      {
        name: 'a',
        project: 'pa',
        priorityClassName: 'build',
        node: 'n1',
        gpu: { fraction: 0.5, gpu: 0 },
        startMs: 0,
        endMs: 30_000,
      },
      {
        name: 'b',
        project: 'pb',
        node: 'n1',
        gpu: { fraction: 0.25, gpu: 0, memoryMiB: 20_000 },
        startMs: 10_000,
        endMs: 30_000,
      },
    ],
    gpuMetrics: [{ node: 'n1', gpu: 0, segments: [{ fromMs: 0, nvlinkTxBytesPerSec: 3000, fbUsedMiB: 30 }] }],
  });

  it('conserves the device traffic: alone, then 2/3 and 1/3, then unallocated', () => {
    const t = expectedTotals(frac, { samplingIntervalMs: 10_000 });
    const a = row(t.totals, 'cust');
    const b = row(t.totals, 'pb');
    const free = row(t.totals, 'unallocated');
    expect(a).toMatchObject({ project: 'pa', workloadType: 'Interactive' }); // priority class build
    expect(b.workloadType).toBe('Unknown');
    expectClose(a.nvlinkTxBytes, 70_000); // 3000 x 10 s alone + 3000 x (0.5/0.75) x 20 s
    expectClose(b.nvlinkTxBytes, 20_000); // 3000 x (0.25/0.75) x 20 s
    expect(free.nvlinkTxBytes).toBe(30_000); // [30 s, 40 s) free
    expectClose(a.gpuMemoryUsedByteSeconds, 700 * MIB); // 30 MiB x (10 + 20 x 2/3) s
    expectClose(b.gpuMemoryUsedByteSeconds, 200 * MIB); // 30 MiB x 20/3 s
    expect(a.gpuAllocationSeconds).toBe(15); // 0.5 x 30 s
    expect(b.gpuAllocationSeconds).toBe(5); // 0.25 x 20 s
    expect(a.gpuMemoryAllocatedByteSeconds).toBe(40_000 * MIB * 30); // floor(0.5 x 80000) MiB x 30 s
    expect(b.gpuMemoryAllocatedByteSeconds).toBe(20_000 * MIB * 20);
  });

  it('gives each sharer a sample with its share', () => {
    const s = expectedSamples(frac, { samplingIntervalMs: 10_000 });
    const at20 = s.bandwidth.filter((x) => x.observedAtMs === T0 + 20_000);
    expect(at20.map((x) => x.podName).sort()).toEqual(['a', 'b']);
    expectClose(at20.find((x) => x.podName === 'a')!.share, 2 / 3);
    expectClose(at20.find((x) => x.podName === 'b')!.nvlinkTxBytesPerSecond, 1000);
  });

  it('splits piecewise when a sharer joins between grid points', () => {
    const mid = scenario({
      durationMs: 10_000,
      nodes: [{ name: 'n1', gpuProduct: 'G', gpuCount: 1, gpuMemoryMiB: 1000 }],
      pods: [
        { name: 'a', project: 'pa', node: 'n1', gpu: { fraction: 0.5, gpu: 0 }, startMs: 0, endMs: 20_000 },
        {
          name: 'b',
          project: 'pb',
          node: 'n1',
          gpu: { fraction: 0.5, gpu: 0 },
          startMs: 5000,
          endMs: 20_000,
        },
      ],
      gpuMetrics: [{ node: 'n1', gpu: 0, segments: [{ fromMs: 0, pcieRxBytesPerSec: 1000 }] }],
    });
    const s = expectedSamples(mid, { samplingIntervalMs: 10_000 });
    const a = s.bandwidth.find((x) => x.podName === 'a')!;
    const b = s.bandwidth.find((x) => x.podName === 'b')!;
    expect(a.pcieRxBytes).toBe(7500); // 1000 x 5 s alone + 500 x 5 s
    expect(a.share).toBe(0.75); // time-weighted
    expect([b.spanStartMs - T0, b.spanEndMs - T0, b.pcieRxBytes, b.share]).toEqual([5000, 10_000, 2500, 0.5]);
  });
});

describe('ground truth: MIG, CPU-only and pending pods', () => {
  const mixed = scenario({
    durationMs: 20_000,
    nodes: [
      {
        name: 'm',
        gpuProduct: 'NVIDIA-H100-80GB-HBM3',
        gpuCount: 1,
        gpuMemoryMiB: 81_559,
        mig: [{ gpu: 0, instances: [{ id: 1, profile: '3g.40gb' }] }],
      },
      { name: 'c', gpuProduct: 'none', gpuCount: 0, gpuMemoryMiB: 1 },
    ],
    pods: [
      {
        name: 'mig',
        project: 'p',
        node: 'm',
        gpu: { mig: { gpu: 0, instance: 1 } },
        startMs: 0,
        endMs: 10_000,
      },
      {
        name: 'cpu',
        project: 'p',
        workloadKind: 'Inference',
        node: 'c',
        cpuCores: 0.5,
        memoryMiB: 1,
        createdMs: 0,
        startMs: 10_000,
      },
    ],
    gpuMetrics: [{ node: 'm', gpu: 0, migInstance: 1, segments: [{ fromMs: 0, pcieTxBytesPerSec: 70 }] }],
  });

  it('bills a MIG slice as its compute share and profile memory', () => {
    const t = expectedTotals(mixed, { samplingIntervalMs: 10_000 });
    const mig = row(t.totals, 'p', { workloadType: 'Unknown' });
    expectClose(mig.gpuAllocationSeconds, 30 / 7); // 3g of 7 slices x 10 s
    expect(mig.gpuMemoryAllocatedByteSeconds).toBe(40 * 1024 * MIB * 10); // 40 GB profile x 10 s
    expect(mig.pcieTxBytes).toBe(700);
    expect(mig.gpuType).toBe('NVIDIA-H100-80GB-HBM3');
    const free = row(t.totals, 'unallocated');
    expect(free.pcieTxBytes).toBe(700); // [10 s, 20 s) instance free
  });

  it('bills a CPU-only pod with gpuType "" and nothing while Pending', () => {
    const t = expectedTotals(mixed, { samplingIntervalMs: 10_000 });
    const cpu = row(t.totals, 'p', { workloadType: 'Inference' });
    expect(cpu.gpuType).toBe('');
    expect(cpu.cpuCoreSeconds).toBe(5); // 0.5 cores x [10 s, 20 s); created at 0 but pending until 10 s
    expect(cpu.memoryByteSeconds).toBe(MIB * 10);
    expect(cpu.gpuAllocationSeconds).toBe(0);
  });
});

describe('ground truth: attribution from what the pod carries', () => {
  const odd = scenario({
    durationMs: 10_000,
    customers: { q: 'queue-customer' },
    nodes: [{ name: 'c', gpuProduct: 'none', gpuCount: 0, gpuMemoryMiB: 1 }],
    pods: [
      // No project label: the runai-<project> namespace names it.
      { name: 'a', project: 'pa', node: 'c', cpuCores: 1, startMs: 0, omit: ['project'] },
      // No project label, a foreign namespace: the queue label names it.
      {
        name: 'b',
        project: 'pb',
        queue: 'q',
        namespace: 'x',
        node: 'c',
        cpuCores: 1,
        startMs: 0,
        omit: ['project'],
      },
      // Nothing to go by: the fallback subject.
      {
        name: 'c',
        project: 'pc',
        namespace: 'y',
        node: 'c',
        cpuCores: 1,
        startMs: 0,
        omit: ['project', 'runai/queue'],
      },
    ],
  });

  it('falls back to the namespace, then the queue, then the fallback subject', () => {
    const t = expectedTotals(odd, { samplingIntervalMs: 10_000, fallbackSubject: 'nobody' });
    expect(t.totals.map((r) => [r.subject, r.project, r.cpuCoreSeconds]).sort()).toEqual([
      ['nobody', '', 10],
      ['pa', 'pa', 10],
      ['queue-customer', 'q', 10],
    ]);
    expect(
      expectedTotals(odd, { samplingIntervalMs: 10_000 }).totals.some((r) => r.subject === 'unattributed'),
    ).toBe(true);
  });
});

describe('ground truth of the example scenarios', () => {
  const dir = new URL('../../../test/scenarios/', import.meta.url);
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    it(`${file}: device traffic is conserved and windows add up to the totals`, () => {
      const s = loadScenario(new URL(file, dir).pathname);
      const t = expectedTotals(s, { samplingIntervalMs: 5000, windowMs: 15_000, startMs: T0 });
      const truthBytes = t.totals.reduce((acc, r) => acc + r.pcieTxBytes + r.nvlinkRxBytes, 0);
      // Device-side integral over the billed range, from the scenario's segments (held 1 s late by the exporter lag).
      let deviceBytes = 0;
      for (const m of s.gpuMetrics) {
        for (let k = 1; k * 5000 <= s.durationMs; k++) {
          const at = k * 5000 - s.dcgm.lagMs;
          const seg = [...m.segments].reverse().find((x) => x.fromMs <= at);
          deviceBytes += ((seg?.pcieTxBytesPerSec ?? 0) + (seg?.nvlinkRxBytesPerSec ?? 0)) * 5;
        }
      }
      expectClose(truthBytes, deviceBytes);
      for (const q of QUANTITIES) {
        const total = t.totals.reduce((acc, r) => acc + r[q], 0);
        const windowed = t.windows!.reduce((acc, r) => acc + r[q], 0);
        expectClose(windowed, total);
      }
    });
  }
});
