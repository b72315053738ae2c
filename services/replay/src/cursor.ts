/**
 * What the replay group's committed offset of one dead-letter partition says has been decided. Every
 * record below `next` was replayed, except those in `pending`: records a filtered run passed over, still to
 * be decided by a later run. Committed (offset = next, metadata = pending) in the same transaction as the
 * replayed records, so "decided" and "delivered" can never disagree. Pure.
 */
export interface ReplayCursor {
  readonly next: number;
  /** Inclusive offset ranges below `next`, ascending; offsets inside them that hold no record are harmless. */
  readonly pending: ReadonlyArray<readonly [number, number]>;
}

export const START_CURSOR: ReplayCursor = { next: 0, pending: [] };

const METADATA_VERSION = 1;
/** Under the broker's offset.metadata.max.bytes (4096 by default), which rejects the whole commit. */
export const MAX_METADATA_BYTES = 4000;

export function encodeCursorMetadata(cursor: ReplayCursor): string {
  return JSON.stringify({ v: METADATA_VERSION, pending: cursor.pending });
}

function isRange(value: unknown): value is [number, number] {
  return (
    Array.isArray(value) &&
    value.length === 2 &&
    value.every((n) => Number.isSafeInteger(n) && (n as number) >= 0) &&
    (value[0] as number) <= (value[1] as number)
  );
}

/**
 * The cursor from a committed offset and its metadata. Nothing committed: start of the log. An offset
 * without our metadata was set by someone else (kafka-consumer-groups --reset-offsets): taken as given,
 * everything from it on undecided and nothing pending below it.
 */
export function decodeCursor(offset: number | null, metadata: string | null): ReplayCursor {
  if (offset === null || offset < 0) return START_CURSOR;
  try {
    const parsed = JSON.parse(metadata ?? '') as { v?: unknown; pending?: unknown };
    if (parsed.v === METADATA_VERSION && Array.isArray(parsed.pending) && parsed.pending.every(isRange)) {
      const pending = (parsed.pending as Array<[number, number]>).filter(([from]) => from < offset);
      return {
        next: offset,
        pending: pending.map(([from, to]) => [from, Math.min(to, offset - 1)] as const),
      };
    }
  } catch {
    // not ours: fall through
  }
  return { next: offset, pending: [] };
}

/** True when the record at `offset` has not been decided yet (replayed or knowingly passed over). */
export function isUndecided(cursor: ReplayCursor, offset: number): boolean {
  return offset >= cursor.next || cursor.pending.some(([from, to]) => offset >= from && offset <= to);
}

/** The first offset a run has to read: the oldest pending record, or `next`. */
export function readStart(cursor: ReplayCursor): number {
  return Math.min(cursor.next, ...cursor.pending.map(([from]) => from));
}

/**
 * The cursor after a run that saw every record from `readStart(cursor)` (or the log start, if later) up
 * to `frontier` (exclusive), in offset order, each with whether it is still pending afterwards (a record
 * passed over by the filters; false for records replayed now or decided before). Pending ranges are
 * rebuilt from what was seen, so ranges whose records the broker deleted (retention) disappear; a range
 * spans offsets that held no record (transaction markers), never a decided record.
 */
export function advanceCursor(
  cursor: ReplayCursor,
  seen: ReadonlyArray<{ readonly offset: number; readonly pendingAfter: boolean }>,
  frontier: number,
): ReplayCursor {
  const pending: Array<[number, number]> = [];
  let open: [number, number] | undefined;
  for (const record of seen) {
    if (record.offset >= frontier) break;
    if (!record.pendingAfter) {
      open = undefined;
    } else if (open) {
      open[1] = record.offset;
    } else {
      open = [record.offset, record.offset];
      pending.push(open);
    }
  }
  // Pending ranges beyond the frontier were not read this run: kept as they are.
  for (const [from, to] of cursor.pending) if (to >= frontier) pending.push([Math.max(from, frontier), to]);
  return { next: Math.max(cursor.next, frontier), pending };
}

export function sameCursor(a: ReplayCursor, b: ReplayCursor): boolean {
  return a.next === b.next && encodeCursorMetadata(a) === encodeCursorMetadata(b);
}
