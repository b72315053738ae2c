import { ConfigError, ErrorCodes, GpuMeterError, type UsageEvent } from '@gpu-meter/kit/contracts';
import { DedupeIndex, type Pin } from './dedupe-index.js';
import { correctionEvent, GroupAccumulator, groupKey, sameGroup, usageEventId } from './groups.js';
import { decodeOffsetMetadata, encodeOffsetMetadata } from './offset-metadata.js';
import type { Sample } from './samples.js';
import { windowsFor, windowStartOf, type WindowPart } from './windows.js';

/**
 * Task p: partition p of each input topic, its open windows, its dedupe ids, a watermark per input. Pure:
 * time comes in as arguments, outputs come back as values. See DESIGN.md for why each rule is there.
 */
export interface TaskSettings {
  /**
   * How many tasks the deployment has (TASKS): task p owns partitions q ≡ p (mod tasks) of both raw topics,
   * so a pod's or GPU's samples stay in one task when the topics grow to a multiple of it.
   */
  readonly tasks: number;
  readonly windowMs: number;
  readonly graceMs: number;
  readonly idleAdvanceMs: number;
  readonly latePolicy: 'late-topic' | 'correction';
  /**
   * How long (on the input's own watermark) a sample id stays known after the end of the window its
   * observation time falls in, + grace: a duplicate arriving within it is recognised, late or not.
   */
  readonly dedupeRetentionMs: number;
  /**
   * Longest silence expected between two contacts with Kafka (a fetched batch or a tick's end offsets).
   * A longer one does not count as any input's quiet time (see `contact`). Absent: not checked.
   */
  readonly contactGapMs?: number;
}

export interface InputState {
  readonly topic: string;
  readonly partition: number;
  /** Max observedAtMs seen on this input; null before the first sample. */
  wm: number | null;
  /** Next offset to process; null when nothing was committed or processed yet. */
  position: number | null;
  /** Records below this offset were processed by an earlier owner whose outputs are committed. */
  through: number | null;
  /** Latest known log end offset; null until a fetch or poll told us. */
  end: number | null;
  /**
   * Wall clock of the last record on this input (or of the restore), moved later by every silence in
   * contact with Kafka since, so `now - lastRecordMs` is the quiet time that could be seen.
   */
  lastRecordMs: number;
}

interface OpenWindow {
  readonly start: number;
  readonly end: number;
  /**
   * The window's groups by subject; a subject has few groups, told apart by `sameGroup`, so a record finds
   * its group without a key string built per record.
   */
  readonly groups: Map<string, GroupAccumulator[]>;
  groupCount: number;
  /** Per input: first offset that contributed, and the input's watermark just before it. */
  readonly pins: Array<Pin | undefined>;
}

/** The parts of one record's processing the shell must write, in this order, in one transaction. */
export interface TaskOutput {
  deadLetters: Array<{ input: number; offset: number; code: string; reason: string }>;
  late: Array<{ input: number; offset: number; reason: string; windows: number[] }>;
  events: UsageEvent[];
  dedupeHits: number;
  replayed: number;
}

export function emptyOutput(): TaskOutput {
  return { deadLetters: [], late: [], events: [], dedupeHits: 0, replayed: 0 };
}

export interface CommitEntry {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly metadata: string;
}

export type TaskRecord =
  | { kind: 'sample'; offset: number; sample: Sample }
  | { kind: 'invalid'; offset: number; code: string; reason: string };

export class Task {
  readonly inputs: InputState[];
  private readonly windows = new Map<number, OpenWindow>();
  /** Per raw topic, the sample ids counted, by the window of their observation time; see `live`. */
  private readonly dedupe = new Map<string, DedupeIndex>();
  /** Each input's topic's dedupe index, by input index. */
  private readonly dedupeOf: DedupeIndex[];
  /** End of the last closed window (every window ending at or before it is closed). */
  closed: number | null = null;
  /** Wall clock of the latest contact with Kafka (or of the restore). */
  private lastContactMs: number;
  private lastInput = 0;

  constructor(
    private readonly settings: TaskSettings,
    /** The task number: part of every event id it emits. */
    readonly id: number,
    inputs: ReadonlyArray<{ topic: string; partition: number }>,
    nowMs: number,
  ) {
    this.lastContactMs = nowMs;
    this.inputs = inputs.map((i) => ({
      ...i,
      wm: null,
      position: null,
      through: null,
      end: null,
      lastRecordMs: nowMs,
    }));
    this.dedupeOf = this.inputs.map((input) => {
      let index = this.dedupe.get(input.topic);
      if (index === undefined) this.dedupe.set(input.topic, (index = new DedupeIndex()));
      return index;
    });
  }

  /**
   * Rebuilds the replay knowledge from committed offsets and their metadata (offset null = nothing
   * committed). An offset without valid metadata was not written by a task (a tool reset it, or another
   * program used the group): without `closed` and `through` a replay would emit windows again, partial and
   * under their old ids, so the task refuses to start (DESIGN.md, "Restore refuses to guess").
   */
  restore(committed: ReadonlyArray<{ offset: number | null; metadata: string | null }>): void {
    committed.forEach((c, index) => {
      const input = this.inputs[index]!;
      const meta = c.offset === null ? undefined : decodeOffsetMetadata(c.metadata);
      if (c.offset !== null && meta === undefined)
        throw new GpuMeterError(
          'OFFSET_METADATA_INVALID',
          `${ErrorCodes.OFFSET_METADATA_INVALID.code}: ${input.topic}:${input.partition} has committed offset ${c.offset} ` +
            `without gpu-meter metadata (${JSON.stringify(c.metadata)}); refusing to guess which windows ` +
            'were emitted. See the aggregator DESIGN.md, "Restore refuses to guess", for recovery.',
        );
      if (meta?.tasks !== undefined && meta.tasks !== this.settings.tasks)
        throw new ConfigError(
          'TASKS',
          `is ${this.settings.tasks}, but ${input.topic}:${input.partition} was committed with ${meta.tasks} ` +
            'tasks; changing it would move pods and GPUs to other tasks mid-window (set it back)',
        );
      input.position = c.offset;
      input.wm = meta?.wm ?? null;
      input.through = meta ? Math.max(meta.through, c.offset ?? 0) : null;
      if (meta?.closed != null) this.closed = Math.max(this.closed ?? meta.closed, meta.closed);
    });
  }

  /** The index of input (topic, partition), or undefined when the task does not own it. */
  findInput(topic: string, partition: number): number | undefined {
    const index = this.inputs.findIndex((i) => i.partition === partition && i.topic === topic);
    return index < 0 ? undefined : index;
  }

  /** `findInput` for a record the shell routed here: an input it does not own is a bug, not data. */
  inputIndex(topic: string, partition: number): number {
    // The last hit first: a batch's records all come from one input.
    const last = this.inputs[this.lastInput];
    if (last !== undefined && last.partition === partition && last.topic === topic) return this.lastInput;
    const index = this.findInput(topic, partition);
    if (index === undefined) throw new Error(`${topic}:${partition} is not an input of task ${this.id}`);
    this.lastInput = index;
    return index;
  }

  get openWindows(): number {
    return this.windows.size;
  }

  get openGroups(): number {
    let n = 0;
    for (const w of this.windows.values()) n += w.groupCount;
    return n;
  }

  get dedupeSize(): number {
    let n = 0;
    for (const index of this.dedupe.values()) n += index.size;
    return n;
  }

  /** Memory of the dedupe tables (fingerprints), for the benchmark and the gauge. */
  get dedupeBytes(): number {
    let n = 0;
    for (const index of this.dedupe.values()) n += index.bytes;
    return n;
  }

  /** Processes one record of input `inputIndex` (records of one input must come in offset order). */
  process(inputIndex: number, record: TaskRecord, nowMs: number, out: TaskOutput): void {
    const input = this.inputs[inputIndex]!;
    if (input.position !== null && record.offset < input.position) return; // already processed here
    const replay = input.through !== null && record.offset < input.through;
    if (replay) out.replayed += 1;
    input.lastRecordMs = nowMs;
    input.position = record.offset + 1;
    if (record.kind === 'invalid') {
      if (!replay)
        out.deadLetters.push({
          input: inputIndex,
          offset: record.offset,
          code: record.code,
          reason: record.reason,
        });
      return;
    }
    const sample = record.sample;
    const wmBefore = input.wm;
    input.wm = wmBefore === null ? sample.observedAtMs : Math.max(wmBefore, sample.observedAtMs);
    const { graceMs, windowMs } = this.settings;
    // Dedupe first, so a duplicate of a counted sample never turns into a late record or a correction.
    // Liveness depends only on this input's own watermark (never on when windows closed), so the decision
    // is the same in every run and in every replay.
    // Every copy of a sample has the same observation time, so the same bucket.
    const bucketEnd = windowStartOf(sample.observedAtMs - 1, windowMs) + windowMs;
    const pin: Pin = { offset: record.offset, wmBefore };
    if (this.live(bucketEnd, wmBefore)) {
      const ids = this.dedupeOf[inputIndex]!;
      const bucket = ids.bucket(bucketEnd) ?? ids.open(bucketEnd);
      // Another observer's view of this GPU at this grid point already counts: this one is a copy.
      const otherView =
        sample.observation !== undefined && !bucket.observers.claim(sample.observation, sample.observer!);
      if (otherView || !bucket.ids.add(sample.id)) {
        out.dedupeHits += 1;
        return;
      }
      bucket.pins[inputIndex] ??= pin;
    }
    const parts = windowsFor(sample.spanStartMs, sample.spanEndMs, windowMs);
    const closed = this.closed;
    let latePart: WindowPart[] | undefined;
    for (const p of parts) {
      if ((closed !== null && p.end <= closed) || (wmBefore !== null && wmBefore >= p.end + graceMs)) {
        (latePart ??= []).push(p);
        continue;
      }
      let window = this.windows.get(p.start);
      if (!window) {
        window = {
          start: p.start,
          end: p.end,
          groups: new Map(),
          groupCount: 0,
          pins: this.inputs.map(() => undefined),
        };
        this.windows.set(p.start, window);
      }
      window.pins[inputIndex] ??= pin;
      this.groupOf(window, sample).add(sample, p.overlapMs);
    }
    if (latePart !== undefined && !replay) {
      if (this.settings.latePolicy === 'correction') {
        for (const p of latePart)
          out.events.push(correctionEvent(sample, p.start, p.end, this.id, p.overlapMs));
      } else {
        // Deterministic text: the watermark rule depends only on this input's order, the closed rule on
        // timing, so name the watermark when it decided.
        const byWatermark = latePart.every((p) => wmBefore !== null && wmBefore >= p.end + graceMs);
        const reason =
          `window(s) ${latePart.map((p) => `[${p.start},${p.end})`).join(' ')} closed: ` +
          (byWatermark
            ? `input watermark ${wmBefore} passed window end + grace ${graceMs} ms`
            : `stream time passed window end + grace ${graceMs} ms`);
        out.late.push({
          input: inputIndex,
          offset: record.offset,
          reason,
          windows: latePart.map((p) => p.start),
        });
      }
    }
  }

  private groupOf(window: OpenWindow, sample: Sample): GroupAccumulator {
    const { dims } = sample;
    let groups = window.groups.get(dims.subject);
    if (groups === undefined) window.groups.set(dims.subject, (groups = []));
    for (let i = 0; i < groups.length; i++) if (sameGroup(groups[i]!.dims, dims)) return groups[i]!;
    const group = new GroupAccumulator(dims);
    groups.push(group);
    window.groupCount += 1;
    return group;
  }

  /** A bucket is live while its input's watermark is below its window end + grace + retention. */
  private live(bucketEnd: number, wm: number | null): boolean {
    return wm === null || wm < bucketEnd + this.settings.graceMs + this.settings.dedupeRetentionMs;
  }

  /**
   * The shell reached Kafka at nowMs. A silence longer than `contactGapMs` (Kafka unreachable, or the whole
   * machine stalled) is left out of every input's quiet time: the producers held up by the same silence
   * deliver only now, so an input stops holding stream time back only after IDLE_ADVANCE_MS of quiet that
   * could be seen. The quiet seen before the silence still counts: restarting the count instead kept a
   * quiet input holding for as long as a loaded machine kept stalling (issue 13).
   */
  contact(nowMs: number): void {
    const gap = this.settings.contactGapMs;
    const silence = nowMs - this.lastContactMs;
    if (gap !== undefined && silence > gap)
      for (const input of this.inputs) input.lastRecordMs = Math.min(input.lastRecordMs + silence, nowMs);
    this.lastContactMs = Math.max(this.lastContactMs, nowMs);
  }

  /** Marks offsets below `next` as consumed (e.g. transaction markers after the last record). */
  markConsumed(index: number, next: number): void {
    const input = this.inputs[index]!;
    if (input.position === null || next > input.position) input.position = next;
  }

  observeEnd(index: number, end: number): void {
    this.inputs[index]!.end = end;
  }

  private caughtUp(input: InputState): boolean {
    return input.end !== null && (input.position ?? 0) >= input.end;
  }

  /**
   * An input holds stream time back while it may still deliver records: it is behind its last known end,
   * or it had a record within IDLE_ADVANCE_MS (a known end goes stale as soon as a producer writes, so
   * "caught up" alone would let one topic close windows the other has simply not fetched yet).
   */
  private holding(input: InputState, nowMs: number): boolean {
    return !this.caughtUp(input) || nowMs - input.lastRecordMs < this.settings.idleAdvanceMs;
  }

  /**
   * Min watermark over the inputs that hold (so a fast topic cannot close windows a slow one has not
   * delivered); when none holds — all read and quiet for IDLE_ADVANCE_MS — the wall clock (or the max
   * watermark, if ahead of it), so a quiet cluster's last window is still emitted.
   */
  streamTime(nowMs: number): number | null {
    const holding = this.inputs.filter((i) => this.holding(i, nowMs));
    if (holding.length > 0) {
      return holding.some((i) => i.wm === null) ? null : Math.min(...holding.map((i) => i.wm!));
    }
    return Math.max(nowMs, ...this.inputs.filter((i) => i.wm !== null).map((i) => i.wm!));
  }

  /** Closes every window whose end + grace stream time has reached, emitting one event per group. */
  closeWindows(nowMs: number, out: TaskOutput): void {
    const time = this.streamTime(nowMs);
    if (time === null) return;
    const { graceMs, windowMs } = this.settings;
    // The last window end E with E + grace <= stream time: every window up to it is closed.
    const closable = windowStartOf(time - graceMs, windowMs);
    if (this.closed !== null && closable <= this.closed) return;
    for (const window of [...this.windows.values()].sort((a, b) => a.start - b.start)) {
      if (window.end > closable) break;
      // Sorted by the JSON group key (as always), computed once per group here rather than per record.
      const groups = [...window.groups.values()].flat().map((g) => [groupKey(g.dims), g] as const);
      groups.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      for (const [, group] of groups) {
        const id = usageEventId(group.dims, window.start, window.end, this.id);
        out.events.push(group.toEvent(window.start, window.end, id));
      }
      this.windows.delete(window.start);
    }
    this.closed = closable;
    // A bucket goes once every input of its topic is past it (a partition behind may still deliver a copy).
    for (const [topic, ids] of this.dedupe) {
      const wms = this.inputs.filter((i) => i.topic === topic).map((i) => i.wm);
      const wm = wms.includes(null) ? null : Math.min(...(wms as number[]));
      ids.sweep((end) => !this.live(end, wm));
    }
  }

  /**
   * Offsets to commit with this transaction: per input, no further than the first record still counted in
   * an open window, so a restart can rebuild every open window by replay. Metadata carries the rest.
   */
  commitPoint(): CommitEntry[] {
    const entries: CommitEntry[] = [];
    this.inputs.forEach((input, index) => {
      if (input.position === null) return;
      let pin: Pin | undefined;
      for (const w of this.windows.values()) {
        const p = w.pins[index];
        if (p && (!pin || p.offset < pin.offset)) pin = p;
      }
      // Live dedupe buckets pin too: a restart must know every id that can still decide a record.
      const idsPin = this.dedupeOf[index]!.smallestLivePin(index, (end) => !this.live(end, input.wm));
      if (idsPin && (!pin || idsPin.offset < pin.offset)) pin = idsPin;
      const offset = pin ? pin.offset : input.position;
      const wm = pin ? pin.wmBefore : input.wm;
      // A replay that has not yet reached the earlier owner's `through` must keep it, or a second crash
      // would forget which records already produced their late records and dead letters.
      const through = Math.max(input.position, input.through ?? input.position);
      const metadata = encodeOffsetMetadata({ wm, closed: this.closed, through, tasks: this.settings.tasks });
      entries.push({ topic: input.topic, partition: input.partition, offset, metadata });
    });
    return entries;
  }
}
