import type { SourceRecord } from './dead-letter.js';

export interface BatchItem<T> {
  readonly value: T;
  readonly source: SourceRecord;
}

/** What one flush writes, and the offsets (next to read, per topic-partition) it may commit afterwards. */
export interface Batch<T> {
  readonly items: ReadonlyArray<BatchItem<T>>;
  readonly offsets: ReadonlyMap<string, { topic: string; partition: number; offset: string }>;
}

/**
 * Collects consumed records until a flush is due: by size (maxRows items) or by time (maxWaitMs since the
 * oldest record not yet flushed). Records that were dead-lettered carry no item but still advance the
 * offset to commit. Pure: time is passed in, nothing is written anywhere.
 */
export class BatchAccumulator<T> {
  private items: Array<BatchItem<T>> = [];
  private offsets = new Map<string, { topic: string; partition: number; offset: string }>();
  private oldestAt: number | undefined;

  constructor(
    readonly maxRows: number,
    readonly maxWaitMs: number,
  ) {
    if (maxRows < 1) throw new RangeError('maxRows must be at least 1');
  }

  get size(): number {
    return this.items.length;
  }

  get empty(): boolean {
    return this.items.length === 0 && this.offsets.size === 0;
  }

  add(item: BatchItem<T>, nowMs: number): void {
    this.items.push(item);
    this.advance(item.source, nowMs);
  }

  /** A record consumed without an item (e.g. dead-lettered): its offset may be committed with the batch. */
  skip(source: SourceRecord, nowMs: number): void {
    this.advance(source, nowMs);
  }

  full(): boolean {
    return this.items.length >= this.maxRows;
  }

  due(nowMs: number): boolean {
    if (this.empty) return false;
    return this.full() || nowMs - (this.oldestAt ?? nowMs) >= this.maxWaitMs;
  }

  /** Removes and returns everything collected so far. */
  take(): Batch<T> {
    const batch = { items: this.items, offsets: this.offsets };
    this.items = [];
    this.offsets = new Map();
    this.oldestAt = undefined;
    return batch;
  }

  /** Puts a batch whose flush failed back in front of what arrived meanwhile, to be flushed again. */
  putBack(batch: Batch<T>, nowMs: number): void {
    this.items = [...batch.items, ...this.items];
    for (const [key, entry] of batch.offsets) {
      const current = this.offsets.get(key);
      if (!current || BigInt(current.offset) < BigInt(entry.offset)) this.offsets.set(key, entry);
    }
    // A batch put back is overdue already: flush it at the next retry, not after another maxWaitMs.
    this.oldestAt = Math.min(this.oldestAt ?? nowMs, nowMs - this.maxWaitMs);
  }

  private advance(source: SourceRecord, nowMs: number): void {
    const key = `${source.topic}\u0000${source.partition}`;
    const next = (BigInt(source.offset) + 1n).toString();
    const current = this.offsets.get(key);
    if (!current || BigInt(current.offset) < BigInt(next)) {
      this.offsets.set(key, { topic: source.topic, partition: source.partition, offset: next });
    }
    this.oldestAt ??= nowMs;
  }
}
