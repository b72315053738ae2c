import { ErrorCodes } from '@gpu-meter/kit/contracts';
import {
  fromBandwidth,
  fromPodAllocation,
  invalidReason,
  timeInvalidReason,
  type Sample,
} from './samples.js';
import type { Decoded } from './decode.js';
import {
  emptyOutput,
  Task,
  type CommitEntry,
  type TaskOutput,
  type TaskRecord,
  type TaskSettings,
} from './task.js';

/**
 * The synchronous heart of the service, in the manner of Kafka Streams' TopologyTestDriver: records and
 * time in, everything one transaction must write out. The Kafka loop is a thin shell around it; tests drive
 * it directly, including crash + restore.
 */
export interface DriverSettings extends TaskSettings {
  readonly podAllocationsTopic: string;
  readonly bandwidthSamplesTopic: string;
  readonly maxSampleSpanMs: number;
  /** The collectors' sampling interval: a sample's span lies in the interval before its observation. */
  readonly samplingIntervalMs: number;
  /** How far a sample's observation time may be ahead of its record's (broker) timestamp. */
  readonly maxClockAheadMs: number;
}

export interface DriverRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** The record's Kafka timestamp (the broker's clock on LogAppendTime topics); absent when unknown. */
  readonly timestampMs?: number;
  readonly decoded: Decoded;
}

export interface SourceRef {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/**
 * What one batch or tick gives the shell to write in one transaction: the task's `TaskOutput`, each record
 * named by its topic and partition instead of the task's input number, and the task's commit point.
 */
export interface Step extends Omit<TaskOutput, 'late' | 'deadLetters'> {
  late: Array<SourceRef & { reason: string }>;
  deadLetters: Array<SourceRef & { code: string; reason: string }>;
  commits: CommitEntry[];
}

export interface Committed {
  readonly offset: number | null;
  readonly metadata: string | null;
}

/** One input partition of a task and what its group committed for it. */
export interface TaskInput {
  readonly topic: string;
  readonly partition: number;
  readonly committed: Committed;
}

/** The task that owns partition `partition` of either raw topic (see TaskSettings.tasks). */
export function taskOf(partition: number, tasks: number): number {
  return partition % tasks;
}

export class AggregatorDriver {
  private readonly tasks = new Map<number, Task>();

  constructor(readonly settings: DriverSettings) {}

  get topics(): [string, string] {
    return [this.settings.podAllocationsTopic, this.settings.bandwidthSamplesTopic];
  }

  /**
   * Takes task p from its committed state: every partition it owns of both raw topics (q ≡ p mod tasks), each
   * with its committed offset + metadata.
   */
  assign(task: number, inputs: readonly TaskInput[], nowMs: number): void {
    for (const input of inputs) {
      if (!this.topics.includes(input.topic) || taskOf(input.partition, this.settings.tasks) !== task)
        throw new Error(`${input.topic}:${input.partition} is not an input of task ${task}`);
    }
    const state = new Task(this.settings, task, inputs, nowMs);
    state.restore(inputs.map((input) => input.committed));
    this.tasks.set(task, state);
  }

  revoke(task: number): void {
    this.tasks.delete(task);
  }

  has(task: number): boolean {
    return this.tasks.has(task);
  }

  task(task: number): Task | undefined {
    return this.tasks.get(task);
  }

  assigned(): number[] {
    return [...this.tasks.keys()].sort((a, b) => a - b);
  }

  /** Feeds records of task p (any mix of its inputs, each in offset order), then closes what it can. */
  process(task: number, records: readonly DriverRecord[], nowMs: number): Step {
    return this.processEach(task, records.length, (i) => records[i]!, nowMs);
  }

  /**
   * `process` for records made one at a time as the task takes them: the worker decodes each record just
   * before, so a batch's decoded records die young instead of all living until the batch ends.
   */
  processEach(taskId: number, count: number, recordAt: (index: number) => DriverRecord, nowMs: number): Step {
    const task = this.require(taskId);
    task.contact(nowMs);
    const out = emptyOutput();
    for (let i = 0; i < count; i++) {
      const record = recordAt(i);
      task.process(task.inputIndex(record.topic, record.partition), this.toTaskRecord(record), nowMs, out);
    }
    task.closeWindows(nowMs, out);
    return this.step(task, out);
  }

  /** Time passes without records (idle advance); the shell got the inputs' end offsets just before. */
  tick(taskId: number, nowMs: number): Step {
    const task = this.require(taskId);
    task.contact(nowMs);
    const out = emptyOutput();
    task.closeWindows(nowMs, out);
    return this.step(task, out);
  }

  /** The log end of an input partition (ignored for partitions no assigned task owns, e.g. just added). */
  observeEnd(topic: string, partition: number, end: number): void {
    const task = this.tasks.get(taskOf(partition, this.settings.tasks));
    const index = task?.findInput(topic, partition);
    if (index !== undefined) task!.observeEnd(index, end);
  }

  markConsumed(topic: string, partition: number, next: number): void {
    const task = this.tasks.get(taskOf(partition, this.settings.tasks));
    const index = task?.findInput(topic, partition);
    if (index !== undefined) task!.markConsumed(index, next);
  }

  /** Decoded record → what the task takes: a valid sample, or the reason it is dead-lettered. */
  private toTaskRecord({ decoded, offset, timestampMs }: DriverRecord): TaskRecord {
    if (decoded.kind === 'poison')
      return { kind: 'invalid', offset, code: decoded.code, reason: decoded.reason };
    let sample: Sample;
    try {
      sample = decoded.kind === 'pod' ? fromPodAllocation(decoded.value) : fromBandwidth(decoded.value);
    } catch (error) {
      const reason = `malformed sample: ${(error as Error).message}`;
      return { kind: 'invalid', offset, code: ErrorCodes.VALIDATION_FAILED.code, reason };
    }
    const reason =
      invalidReason(sample, this.settings.maxSampleSpanMs) ??
      timeInvalidReason(sample, this.settings, timestampMs);
    return reason === undefined
      ? { kind: 'sample', offset, sample }
      : { kind: 'invalid', offset, code: ErrorCodes.VALIDATION_FAILED.code, reason };
  }

  private step(task: Task, out: TaskOutput): Step {
    const ref = (input: number, offset: number): SourceRef => ({
      topic: task.inputs[input]!.topic,
      partition: task.inputs[input]!.partition,
      offset,
    });
    return {
      events: out.events,
      late: out.late.map((l) => ({ ...ref(l.input, l.offset), reason: l.reason })),
      deadLetters: out.deadLetters.map((d) => ({
        ...ref(d.input, d.offset),
        code: d.code,
        reason: d.reason,
      })),
      commits: task.commitPoint(),
      dedupeHits: out.dedupeHits,
      replayed: out.replayed,
    };
  }

  private require(taskId: number): Task {
    const task = this.tasks.get(taskId);
    if (!task) throw new Error(`task ${taskId} is not assigned`);
    return task;
  }
}
