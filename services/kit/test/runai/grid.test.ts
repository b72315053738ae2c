import { describe, expect, it } from 'vitest';
import { deterministicId } from '@gpu-meter/kit/contracts';
import {
  bandwidthSampleId,
  bandwidthSampleKey,
  gridCeil,
  gridFloor,
  gridPoints,
  gridPointsOverlapping,
  podSampleId,
  podSampleKey,
  sampleSpan,
} from '@gpu-meter/kit/runai';

const I = 15_000;

describe('grid', () => {
  it('is aligned to the epoch', () => {
    expect(gridFloor(1_700_000_007_123, I)).toBe(1_699_999_995_000);
    expect(gridCeil(1_700_000_007_123, I)).toBe(1_700_000_010_000);
    expect(gridCeil(1_700_000_010_000, I)).toBe(1_700_000_010_000);
    expect(gridPoints(1_000, 46_000, I)).toEqual([15_000, 30_000, 45_000]);
  });

  it('rejects a non-positive or fractional interval', () => {
    expect(() => gridFloor(1, 0)).toThrow(RangeError);
    expect(() => gridFloor(1, 1.5)).toThrow(RangeError);
  });

  it('clips a sample to the running span, to the millisecond', () => {
    expect(sampleSpan(30_000, I, { startMs: 0, endMs: null })).toEqual({ startMs: 15_000, endMs: 30_000 });
    expect(sampleSpan(30_000, I, { startMs: 17_250, endMs: null })).toEqual({
      startMs: 17_250,
      endMs: 30_000,
    });
    expect(sampleSpan(30_000, I, { startMs: 0, endMs: 21_007 })).toEqual({ startMs: 15_000, endMs: 21_007 });
    expect(sampleSpan(30_000, I, { startMs: 16_000, endMs: 17_000 })).toEqual({
      startMs: 16_000,
      endMs: 17_000,
    });
  });

  it('gives no sample where the span does not overlap', () => {
    expect(sampleSpan(30_000, I, { startMs: 30_000, endMs: null })).toBeUndefined();
    expect(sampleSpan(30_000, I, { startMs: 0, endMs: 15_000 })).toBeUndefined();
    expect(sampleSpan(30_000, I, { startMs: 20_000, endMs: 20_000 })).toBeUndefined();
  });

  it('backfill points tile the running span exactly once', () => {
    const running = { startMs: 7_001, endMs: 61_999 };
    const points = gridPointsOverlapping(running, 0, 1_000_000, I);
    expect(points).toEqual([15_000, 30_000, 45_000, 60_000, 75_000]);
    const covered = points
      .map((t) => sampleSpan(t, I, running)!)
      .reduce((sum, span) => sum + (span.endMs - span.startMs), 0);
    expect(covered).toBe(running.endMs - running.startMs);
  });

  it('backfill stops at the look-back bounds and at now for a running pod', () => {
    const running = { startMs: 0, endMs: null };
    expect(gridPointsOverlapping(running, 40_000, 91_000, I)).toEqual([45_000, 60_000, 75_000, 90_000]);
    expect(gridPointsOverlapping({ startMs: 0, endMs: 30_000 }, 0, 100_000, I)).toEqual([15_000, 30_000]);
  });

  it('ids are deterministic, of the documented parts, and differ by every part', () => {
    expect(podSampleId('c', 'uid', 15_000)).toBe(deterministicId('c', 'uid', 'pod-allocation', 15_000));
    expect(bandwidthSampleId('c', 'GPU-1', 'uid', 15_000)).toBe(
      deterministicId('c', 'GPU-1', 'uid', 'gpu-bandwidth', 15_000),
    );
    expect(bandwidthSampleId('c', 'GPU-1', undefined, 15_000)).toBe(
      deterministicId('c', 'GPU-1', 'unallocated', 'gpu-bandwidth', 15_000),
    );
    const ids = new Set([
      podSampleId('c', 'uid', 15_000),
      podSampleId('c2', 'uid', 15_000),
      podSampleId('c', 'uid2', 15_000),
      podSampleId('c', 'uid', 30_000),
    ]);
    expect(ids.size).toBe(4);
  });

  it('keys are cluster/pod uid and cluster/GPU uuid, whatever a sample says about who is billed', () => {
    const pod = { clusterId: 'c', podUid: 'uid', subject: 'acme', project: 'team-a' };
    const relabelled = { ...pod, subject: 'globex', project: 'team-b' };
    expect(podSampleKey(pod)).toBe('c/uid');
    expect(podSampleKey(relabelled)).toBe(podSampleKey(pod));
    const others = [
      { ...pod, clusterId: 'c2' },
      { ...pod, podUid: 'u2' },
    ];
    expect(new Set([pod, ...others].map(podSampleKey)).size).toBe(3);

    const gpu = { clusterId: 'c', gpuUuid: 'GPU-1', podUid: 'uid', subject: 'acme', migInstanceId: '' };
    const sameGpu = [
      { ...gpu, podUid: '', subject: 'unallocated' },
      { ...gpu, podUid: 'uid2', subject: 'globex' },
      { ...gpu, migInstanceId: '3' },
    ];
    expect(bandwidthSampleKey(gpu)).toBe('c/GPU-1');
    for (const other of sameGpu) expect(bandwidthSampleKey(other)).toBe(bandwidthSampleKey(gpu));
    expect(bandwidthSampleKey({ ...gpu, gpuUuid: 'GPU-2' })).not.toBe(bandwidthSampleKey(gpu));
  });
});
