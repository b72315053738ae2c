import { describe, expect, it } from 'vitest';
import {
  advanceCursor,
  decodeCursor,
  encodeCursorMetadata,
  isUndecided,
  readStart,
  START_CURSOR,
} from '../src/cursor.js';

const seen = (...entries: Array<[number, boolean]>) =>
  entries.map(([offset, pendingAfter]) => ({ offset, pendingAfter }));

describe('replay cursor', () => {
  it('starts at the log start when nothing was committed', () => {
    expect(decodeCursor(null, null)).toEqual(START_CURSOR);
    expect(decodeCursor(-1, '')).toEqual(START_CURSOR);
  });

  it('round-trips through the committed offset and its metadata', () => {
    const cursor = { next: 40, pending: [[3, 5] as const, [12, 12] as const] };
    expect(decodeCursor(cursor.next, encodeCursorMetadata(cursor))).toEqual(cursor);
  });

  it('takes an offset someone else committed as given, nothing pending below it', () => {
    expect(decodeCursor(17, '')).toEqual({ next: 17, pending: [] });
    expect(decodeCursor(17, '{"v":1,"pending":[[5,2]]}')).toEqual({ next: 17, pending: [] });
    expect(decodeCursor(17, 'not json')).toEqual({ next: 17, pending: [] });
  });

  it('clips pending ranges to below the offset (a reset moved it back)', () => {
    expect(decodeCursor(10, '{"v":1,"pending":[[2,3],[8,20],[30,31]]}')).toEqual({
      next: 10,
      pending: [
        [2, 3],
        [8, 9],
      ],
    });
  });

  it('says which offsets are undecided and where a run starts reading', () => {
    const cursor = { next: 20, pending: [[4, 6] as const] };
    expect([3, 4, 6, 7, 19, 20, 99].map((o) => isUndecided(cursor, o))).toEqual([
      false,
      true,
      true,
      false,
      false,
      true,
      true,
    ]);
    expect(readStart(cursor)).toBe(4);
    expect(readStart({ next: 20, pending: [] })).toBe(20);
  });

  it('advances past replayed records and keeps passed-over ones pending', () => {
    const after = advanceCursor(
      START_CURSOR,
      seen([0, false], [1, true], [2, true], [3, false], [5, true]),
      8,
    );
    expect(after).toEqual({
      next: 8,
      pending: [
        [1, 2],
        [5, 5],
      ],
    });
  });

  it('lets a pending range span offsets without records (transaction markers), never a decided record', () => {
    // 11 and 13 are markers; 14 was replayed before (decided), 15 passed over now.
    const after = advanceCursor(START_CURSOR, seen([10, true], [12, true], [14, false], [15, true]), 16);
    expect(after.pending).toEqual([
      [10, 12],
      [15, 15],
    ]);
  });

  it('replaying pending records later removes them; a second run over the same records changes nothing', () => {
    const first = advanceCursor(START_CURSOR, seen([0, true], [1, false], [2, true]), 3);
    const second = advanceCursor(first, seen([0, false], [1, false], [2, false]), 3);
    expect(second).toEqual({ next: 3, pending: [] });
    expect(advanceCursor(second, [], 3)).toEqual(second);
  });

  it('keeps pending ranges beyond a frontier that stopped early (--max-records)', () => {
    const cursor = { next: 50, pending: [[2, 9] as const, [20, 30] as const] };
    // Stopped at offset 25: 2..9 were replayed, 20..24 too, 25..30 not reached.
    const after = advanceCursor(cursor, seen([2, false], [9, false], [20, false], [24, false]), 25);
    expect(after).toEqual({ next: 50, pending: [[25, 30]] });
  });

  it('drops pending records the broker deleted (nothing seen of them)', () => {
    const cursor = { next: 50, pending: [[2, 9] as const] };
    // Log start moved to 40: the run read 40..60 only.
    expect(advanceCursor(cursor, seen([45, false]), 60)).toEqual({ next: 60, pending: [] });
  });
});
