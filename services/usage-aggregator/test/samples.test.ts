import { describe, expect, it } from 'vitest';
import { decodeOffsetMetadata, encodeOffsetMetadata } from '../src/offset-metadata.js';
import { fromBandwidth, fromPodAllocation, invalidReason } from '../src/samples.js';
import { bw, pod } from './harness.js';

const base = { id: 'x', observedAtMs: 10_000, spanStartMs: 5_000 };

describe('invalidReason', () => {
  it.each([
    ['missing sample id', pod({ ...base, id: '' })],
    ['missing subject', pod({ ...base, subject: ' ' })],
    ['spanEndMs 5000 <= spanStartMs 5000', pod({ ...base, spanEndMs: 5_000 })],
    ['exceeds MAX_SAMPLE_SPAN_MS', pod({ ...base, spanStartMs: 0 })],
    ['gpuAllocationSeconds level -1 is negative', pod({ ...base, gpus: -1 })],
    ['cpuCoreSeconds level NaN is not finite', pod({ ...base, cpuCores: Number.NaN })],
    ['memoryByteSeconds level 1e+300 is implausibly large', pod({ ...base, memoryBytes: 1e300 })],
  ])('rejects %s', (reason, sample) => {
    expect(invalidReason(fromPodAllocation(sample), 6_000)).toContain(reason);
  });

  it('rejects infinite bandwidth rates and accepts a good sample', () => {
    expect(
      invalidReason(fromBandwidth(bw({ ...base, pcieRxBytesPerSecond: Infinity })), 6_000),
    ).toBeDefined();
    expect(invalidReason(fromBandwidth(bw(base)), 6_000)).toBeUndefined();
  });

  it('maps levels to the quantities of docs/DESIGN.md §5', () => {
    expect(
      fromPodAllocation(pod({ ...base, gpus: 0.5, gpuMemoryBytes: 7, cpuCores: 2, memoryBytes: 9 })).levels,
    ).toEqual({
      gpuAllocationSeconds: 0.5,
      gpuMemoryAllocatedByteSeconds: 7,
      cpuCoreSeconds: 2,
      memoryByteSeconds: 9,
    });
    expect(Object.keys(fromBandwidth(bw(base)).levels).sort()).toEqual([
      'gpuMemoryUsedByteSeconds',
      'nvlinkRxBytes',
      'nvlinkTxBytes',
      'pcieRxBytes',
      'pcieTxBytes',
    ]);
  });
});

describe('offset metadata codec', () => {
  it('round-trips and rejects foreign text', () => {
    const m = { wm: 123, closed: null, through: 7 };
    expect(decodeOffsetMetadata(encodeOffsetMetadata(m))).toEqual(m);
    expect(decodeOffsetMetadata('')).toBeUndefined();
    expect(decodeOffsetMetadata('hello')).toBeUndefined();
    expect(decodeOffsetMetadata('{"v":2,"wm":1,"closed":1,"through":1}')).toBeUndefined();
    expect(encodeOffsetMetadata({ wm: 1.7e12, closed: 1.7e12, through: 1e9 }).length).toBeLessThan(4096);
  });
});
