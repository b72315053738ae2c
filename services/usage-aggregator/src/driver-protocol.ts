import type { RegistrySettings } from '@gpu-meter/kit/kafka';
import type { PackedValues } from './batch-transfer.js';
import type { DriverSettings, Step, TaskInput } from './driver.js';

/**
 * Messages between the Kafka shell (main thread) and the driver worker. The worker owns every task's state
 * and answers requests strictly in the order they were sent, so the shell can keep several batches in
 * flight and still apply the answers in order.
 */
export interface WorkerSetup {
  readonly settings: DriverSettings;
  readonly registry: RegistrySettings;
}

export type DriverRequest =
  | { op: 'assign'; task: number; inputs: TaskInput[]; nowMs: number }
  | { op: 'revoke'; task: number }
  | {
      op: 'process';
      /** The batch's topic-partition; the worker hands it to the task that owns it. */
      partition: number;
      topic: string;
      values: PackedValues;
      offsets: Float64Array;
      /** Each record's Kafka timestamp (the broker's clock on LogAppendTime topics). */
      timestamps: Float64Array;
      highWatermark: number;
      /** Offset after the batch (records and transaction markers): the input's position once processed. */
      nextOffset: number;
      nowMs: number;
    }
  | {
      op: 'tick';
      task: number;
      nowMs: number;
      ends: Array<{ topic: string; partition: number; end: number }>;
    };

/** A task's gauges after a request, for the shell's metrics. */
export interface TaskGauges {
  readonly openWindows: number;
  readonly openGroups: number;
  readonly dedupeIds: number;
  readonly lag: ReadonlyArray<{ topic: string; partition: number; lag: number }>;
  /** Each input's watermark (max observation time), null before its first sample. */
  readonly watermarks: ReadonlyArray<{ topic: string; partition: number; wm: number | null }>;
}

export interface DriverReply {
  readonly step?: Step;
  readonly gauges?: TaskGauges;
}

export type WorkerMessage =
  { id: number; ok: true; reply: DriverReply } | { id: number; ok: false; error: string };
