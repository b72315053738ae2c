import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '@gpu-meter/kit/contracts';
import { createSchemaRegistry, TopicSerde } from '@gpu-meter/kit/kafka';
import { viewValues } from './batch-transfer.js';
import { decodeSample, decodeSampleKnownAt, type Decoded } from './decode.js';
import { AggregatorDriver, taskOf } from './driver.js';
import type {
  DriverReply,
  DriverRequest,
  TaskGauges,
  WorkerMessage,
  WorkerSetup,
} from './driver-protocol.js';
import {
  BANDWIDTH_FIELDS,
  POD_ALLOCATION_FIELDS,
  type BandwidthFields,
  type PodAllocationFields,
} from './samples.js';

/**
 * The driver's side of the worker: decodes each batch and runs it through the driver, on its own thread,
 * so decoding and aggregation overlap with the main thread's fetching and committing. Requests are
 * handled one at a time, in order (a decode may await the registry for a new writer schema).
 */
export class DriverHost {
  private readonly driver: AggregatorDriver;
  private readonly pod: TopicSerde<PodAllocationFields>;
  private readonly bandwidth: TopicSerde<BandwidthFields>;

  constructor(setup: WorkerSetup) {
    this.driver = new AggregatorDriver(setup.settings);
    const registry = createSchemaRegistry(setup.registry);
    // Decoding needs no registered id: each writer schema id is fetched once, at its first record.
    this.pod = new TopicSerde(
      registry,
      setup.registry,
      setup.settings.podAllocationsTopic,
      'podAllocationSample',
      { readFields: POD_ALLOCATION_FIELDS },
    );
    this.bandwidth = new TopicSerde(
      registry,
      setup.registry,
      setup.settings.bandwidthSamplesTopic,
      'bandwidthSample',
      { readFields: BANDWIDTH_FIELDS },
    );
  }

  async handle(request: DriverRequest): Promise<DriverReply> {
    const { driver } = this;
    switch (request.op) {
      case 'assign':
        driver.assign(request.task, request.inputs, request.nowMs);
        return { gauges: this.gauges(request.task) };
      case 'revoke':
        driver.revoke(request.task);
        return {};
      case 'tick': {
        for (const { topic, partition, end } of request.ends) driver.observeEnd(topic, partition, end);
        const step = driver.tick(request.task, request.nowMs);
        return { step, gauges: this.gauges(request.task) };
      }
      case 'process': {
        const { partition, topic, offsets, timestamps } = request;
        const kind = topic === driver.settings.podAllocationsTopic ? 'pod' : 'bandwidth';
        const serde = kind === 'pod' ? this.pod : this.bandwidth;
        const { bytes, starts, lengths } = viewValues(request.values);
        // Records of a writer schema not loaded yet (and records without a readable header) go through the
        // async decode first, which asks the registry once per new schema id; the rest decode synchronously
        // as the task takes them: no await and no promise per record on the hot path.
        const decodedFirst = new Map<number, Decoded>();
        for (let i = 0; i < lengths.length; i++) {
          const start = starts[i]!;
          const end = start + lengths[i]!;
          if (lengths[i]! >= 0 && serde.knowsSchemaOf(bytes, start, end)) continue;
          const value = lengths[i]! < 0 ? null : bytes.subarray(start, end);
          decodedFirst.set(i, await decodeSample(kind, serde, value));
        }
        const decodedAt = (i: number): Decoded =>
          decodedFirst.get(i) ??
          decodeSampleKnownAt(kind, serde, bytes, starts[i]!, starts[i]! + lengths[i]!);
        driver.observeEnd(topic, partition, request.highWatermark);
        const task = taskOf(partition, driver.settings.tasks);
        const step = driver.processEach(
          task,
          lengths.length,
          (i) => ({
            topic,
            partition,
            offset: offsets[i]!,
            timestampMs: timestamps[i]!,
            decoded: decodedAt(i),
          }),
          request.nowMs,
        );
        driver.markConsumed(topic, partition, request.nextOffset);
        return { step, gauges: this.gauges(task) };
      }
    }
  }

  private gauges(taskId: number): TaskGauges | undefined {
    const task = this.driver.task(taskId);
    if (!task) return undefined;
    return {
      openWindows: task.openWindows,
      openGroups: task.openGroups,
      dedupeIds: task.dedupeSize,
      lag: task.inputs
        .filter((input) => input.end !== null && input.position !== null)
        .map((input) => ({
          topic: input.topic,
          partition: input.partition,
          lag: Math.max(0, input.end! - input.position!),
        })),
      watermarks: task.inputs.map(({ topic, partition, wm }) => ({ topic, partition, wm })),
    };
  }
}

/** Worker entry: one host, requests answered strictly in arrival order. */
function serve(): void {
  const port = parentPort!;
  const host = new DriverHost((workerData as { setup: WorkerSetup }).setup);
  let queue: Promise<void> = Promise.resolve();
  port.on('message', ({ id, request }: { id: number; request: DriverRequest }) => {
    queue = queue.then(async () => {
      let message: WorkerMessage;
      try {
        message = { id, ok: true, reply: await host.handle(request) };
      } catch (error) {
        message = { id, ok: false, error: errorMessage(error) };
      }
      port.postMessage(message);
    });
  });
}

if (!isMainThread && parentPort && (workerData as { setup?: WorkerSetup } | null)?.setup) serve();
