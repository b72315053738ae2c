/**
 * The sample ids a task has counted, kept compactly for as long as a duplicate could still arrive (24 h by
 * default): a 64-bit fingerprint per id in an open-addressing table of two Uint32Arrays, ~16 bytes an id
 * at the load we keep, instead of a Map entry with its string and object (~330 bytes). Ids are grouped in
 * buckets by the window their observation time falls in, so a whole bucket expires at once. Pure.
 *
 * Two different ids share a fingerprint with probability ~n²/2⁶⁵: ~1e-5 for the 19 million ids a task of a
 * 10,000-GPU cluster holds in 24 h. Such a collision would drop one sample as a duplicate.
 */
export class FingerprintSet {
  private hi: Uint32Array;
  private lo: Uint32Array;
  /** A 32-bit value per key, for `claim`; allocated at the first claim. */
  private values: Uint32Array | undefined;
  private count = 0;

  constructor(capacity = 8) {
    this.hi = new Uint32Array(capacity);
    this.lo = new Uint32Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  get bytes(): number {
    return this.hi.byteLength + this.lo.byteLength + (this.values?.byteLength ?? 0);
  }

  has(id: string): boolean {
    fingerprint(id);
    return this.slotOf(FP.hi, FP.lo) < 0;
  }

  /** Adds the id; false if it (or its fingerprint) was there already. */
  add(id: string): boolean {
    fingerprint(id);
    const slot = this.slotOf(FP.hi, FP.lo);
    if (slot < 0) return false;
    this.insert(slot, 0);
    return true;
  }

  /**
   * The key's owner is `owner` (a 32-bit hash): true if it was free (it is now the owner's) or already
   * the owner's, false if another owner holds it.
   */
  claim(key: string, owner: number): boolean {
    this.values ??= new Uint32Array(this.hi.length);
    fingerprint(key);
    const slot = this.slotOf(FP.hi, FP.lo);
    if (slot >= 0) {
      this.insert(slot, owner >>> 0);
      return true;
    }
    return this.values[this.find(FP.hi, FP.lo)] === owner >>> 0;
  }

  private insert(slot: number, value: number): void {
    this.hi[slot] = FP.hi;
    this.lo[slot] = FP.lo;
    if (this.values) this.values[slot] = value;
    this.count += 1;
    // At most half full: short probe runs.
    if (this.count * 2 > this.hi.length) this.grow();
  }

  /** The slot holding (hi, lo), which must be present. */
  private find(hi: number, lo: number): number {
    const mask = this.hi.length - 1;
    let slot = lo & mask;
    while (this.lo[slot] !== lo || this.hi[slot] !== hi) slot = (slot + 1) & mask;
    return slot;
  }

  /** The free slot where (hi, lo) belongs, or -1 when it is already present. */
  private slotOf(hi: number, lo: number): number {
    const mask = this.hi.length - 1;
    for (let slot = lo & mask; ; slot = (slot + 1) & mask) {
      const l = this.lo[slot]!;
      if (l === 0) return slot; // lo is never 0 for a stored fingerprint
      if (l === lo && this.hi[slot] === hi) return -1;
    }
  }

  private grow(): void {
    const { hi, lo, values } = this;
    this.hi = new Uint32Array(hi.length * 2);
    this.lo = new Uint32Array(lo.length * 2);
    if (values) this.values = new Uint32Array(values.length * 2);
    for (let i = 0; i < hi.length; i++) {
      if (lo[i] === 0) continue;
      const slot = this.slotOf(hi[i]!, lo[i]!);
      this.hi[slot] = hi[i]!;
      this.lo[slot] = lo[i]!;
      if (values) this.values![slot] = values[i]!;
    }
  }
}

/** The last fingerprint computed; module state so the hot path allocates nothing per id. */
const FP = { hi: 0, lo: 0 };

/**
 * Two independent 32-bit FNV-1a-style hashes of the id's UTF-16 code units (different offset bases and a
 * final avalanche each). `lo` is forced odd so that 0 can mark an empty slot.
 */
function fingerprint(id: string): void {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ id.length;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  FP.hi = avalanche(a) >>> 0;
  FP.lo = (avalanche(b ^ 0x9e3779b9) | 1) >>> 0;
}

/** A 32-bit hash of a string (an observer's identity). */
export function hash32(text: string): number {
  fingerprint(text);
  return FP.hi;
}

function avalanche(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Where an input first added to a bucket: the offset a restart must replay from to know the bucket again. */
export interface Pin {
  readonly offset: number;
  readonly wmBefore: number | null;
}

export interface Bucket {
  /** End of the window the bucket's observation times fall in. */
  readonly end: number;
  readonly ids: FingerprintSet;
  /** Bandwidth only: each observation's (GPU, grid point) observer, the one whose samples count. */
  readonly observers: FingerprintSet;
  /** Per input of the topic (by the task's input index), the first record that added an id here. */
  readonly pins: Array<Pin | undefined>;
}

/**
 * One raw topic's buckets in a task. All partitions of the topic that the task owns share them: copies of
 * one sample meet here even when they came through different partitions (a topic expanded to a multiple of
 * the tasks, with producers routing by the old and the new count for a while).
 */
export class DedupeIndex {
  private readonly buckets = new Map<number, Bucket>();

  bucket(end: number): Bucket | undefined {
    return this.buckets.get(end);
  }

  open(end: number): Bucket {
    const bucket = { end, ids: new FingerprintSet(), observers: new FingerprintSet(1), pins: [] };
    this.buckets.set(end, bucket);
    return bucket;
  }

  /** Drops the buckets for which `expired` holds. */
  sweep(expired: (end: number) => boolean): void {
    for (const end of this.buckets.keys()) if (expired(end)) this.buckets.delete(end);
  }

  /** Input `input`'s smallest pin over the buckets that are not expired (a day of windows at most). */
  smallestLivePin(input: number, expired: (end: number) => boolean): Pin | undefined {
    let smallest: Pin | undefined;
    for (const bucket of this.buckets.values()) {
      const pin = bucket.pins[input];
      if (pin !== undefined && (!smallest || pin.offset < smallest.offset) && !expired(bucket.end))
        smallest = pin;
    }
    return smallest;
  }

  get size(): number {
    let n = 0;
    for (const bucket of this.buckets.values()) n += bucket.ids.size;
    return n;
  }

  get bytes(): number {
    let n = 0;
    for (const bucket of this.buckets.values()) n += bucket.ids.bytes;
    return n;
  }
}
