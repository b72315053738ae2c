import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { windowsFor, windowStartOf } from '../src/windows.js';

describe('windowsFor', () => {
  it('splits a span over epoch-aligned windows in whole milliseconds', () => {
    expect(windowsFor(59_000, 61_500, 60_000)).toEqual([
      { start: 0, end: 60_000, overlapMs: 1000 },
      { start: 60_000, end: 120_000, overlapMs: 1500 },
    ]);
    expect(windowsFor(60_000, 60_001, 60_000)).toEqual([{ start: 60_000, end: 120_000, overlapMs: 1 }]);
    expect(windowsFor(5, 5, 60_000)).toEqual([]);
    expect(windowStartOf(-1, 1000)).toBe(-1000);
  });

  it('covers the span exactly: contiguous parts, each inside its window, summing to the length', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1e12, max: 1e13 }),
        fc.integer({ min: 1, max: 500_000 }),
        fc.integer({ min: 250, max: 120_000 }),
        (start, length, windowMs) => {
          const parts = windowsFor(start, start + length, windowMs);
          expect(parts.reduce((sum, p) => sum + p.overlapMs, 0)).toBe(length);
          parts.forEach((p, i) => {
            expect(p.start % windowMs === 0 || Object.is(p.start % windowMs, -0)).toBe(true);
            expect(p.end - p.start).toBe(windowMs);
            expect(p.overlapMs).toBeGreaterThan(0);
            if (i > 0) expect(p.start).toBe(parts[i - 1]!.end);
          });
          expect(parts[0]!.start).toBeLessThanOrEqual(start);
          expect(parts[parts.length - 1]!.end).toBeGreaterThanOrEqual(start + length);
        },
      ),
    );
  });
});
