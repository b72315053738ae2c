/** One window's share of a span: [start, end) of the window and the overlap in whole milliseconds. */
export interface WindowPart {
  readonly start: number;
  readonly end: number;
  readonly overlapMs: number;
}

/** Start of the tumbling, epoch-aligned window that contains instant t (works for negative t too). */
export function windowStartOf(t: number, windowMs: number): number {
  return Math.floor(t / windowMs) * windowMs;
}

/**
 * Splits [spanStart, spanEnd) over the tumbling windows [k·W, (k+1)·W) it overlaps. All arithmetic is on
 * integer milliseconds, so the overlaps sum to spanEnd − spanStart exactly. An empty span has no parts.
 */
export function windowsFor(spanStartMs: number, spanEndMs: number, windowMs: number): WindowPart[] {
  const parts: WindowPart[] = [];
  for (let start = windowStartOf(spanStartMs, windowMs); start < spanEndMs; start += windowMs) {
    const end = start + windowMs;
    const overlapMs = Math.min(end, spanEndMs) - Math.max(start, spanStartMs);
    if (overlapMs > 0) parts.push({ start, end, overlapMs });
  }
  return parts;
}
