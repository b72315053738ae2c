import {
  DEAD_LETTER_HEADERS,
  deadLetterMessage,
  errorMessage,
  type BandwidthSample,
  type Logger,
  type PodAllocationSample,
  type TopicSerde,
  type UsageEvent,
} from '@gpu-meter/kit';
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage, Message, Producer } from 'kafkajs';
import { coPartitionedAssigner } from './assigner.js';
import type { AggregatorConfig } from './config.js';
import { decodeSample, decodeSampleKnown } from './decode.js';
import { AggregatorDriver, type Committed, type DriverRecord, type Step } from './driver.js';
import type { AggregatorMetrics } from './metrics.js';

export interface Serdes {
  pod: TopicSerde<PodAllocationSample>;
  bandwidth: TopicSerde<BandwidthSample>;
  usage: TopicSerde<UsageEvent>;
}

const SERVICE = 'usage-aggregator';

/**
 * The Kafka shell around the driver: one consumer (read_committed, no auto-commit) on both raw topics,
 * one transactional producer per task, one transaction per fetched batch or idle tick. Everything that is
 * decided lives in the driver; this file only moves bytes and keeps work for one task strictly serial.
 */
export class AggregatorService {
  private readonly driver: AggregatorDriver;
  private readonly producers = new Map<number, Producer>();
  private readonly lastCommit = new Map<number, string>();
  private consumer: Consumer | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  ready = false;

  constructor(
    private readonly config: AggregatorConfig,
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly serdes: Serdes,
    private readonly logger: Logger,
    private readonly metrics: AggregatorMetrics,
  ) {
    this.driver = new AggregatorDriver(config);
  }

  /** All work (batches, ticks, rebalances) runs one at a time: a task's state and producer are never shared. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  async start(): Promise<void> {
    const { config } = this;
    const consumer = this.kafka.consumer({
      groupId: config.consumerGroupId,
      readUncommitted: false,
      partitionAssigners: [coPartitionedAssigner],
      sessionTimeout: config.sessionTimeoutMs,
      heartbeatInterval: Math.min(3000, Math.floor(config.sessionTimeoutMs / 3)),
      maxBytesPerPartition: config.maxBytesPerPartition,
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      const assigned = [...(payload.memberAssignment[config.podAllocationsTopic] ?? [])].sort(
        (a, b) => a - b,
      );
      void this.exclusive(() => this.reassign(assigned)).then(
        () => {
          if (!this.ready) this.logger.info({ tasks: assigned }, 'aggregator ready');
          this.ready = true;
        },
        (error) => this.logger.error({ err: error }, 'task assignment failed'),
      );
    });
    consumer.on(consumer.events.CRASH, ({ payload }) =>
      this.logger.error({ err: payload.error, restart: payload.restart }, 'consumer crashed'),
    );
    await consumer.connect();
    await consumer.subscribe({
      topics: [config.podAllocationsTopic, config.bandwidthSamplesTopic],
      fromBeginning: true,
    });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.exclusive(() => this.onBatch(payload)),
    });
    this.ticker = setInterval(() => {
      void this.exclusive(() => this.onTick()).catch((error) =>
        this.logger.warn({ err: error }, 'idle tick failed; retrying next tick'),
      );
    }, config.tickMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    await this.consumer?.disconnect();
    await this.exclusive(async () => {
      for (const producer of this.producers.values()) await producer.disconnect().catch(() => undefined);
      this.producers.clear();
    });
  }

  /** After every rebalance: forget all task state and rebuild owned tasks from their committed offsets. */
  private async reassign(partitions: number[]): Promise<void> {
    for (const p of this.driver.assigned()) this.driver.revoke(p);
    for (const [p, producer] of this.producers) {
      if (!partitions.includes(p)) {
        await producer.disconnect().catch(() => undefined);
        this.producers.delete(p);
      }
    }
    this.lastCommit.clear();
    for (const p of partitions) await this.initTask(p);
  }

  /**
   * Fence the previous owner (initTransactions with the task's transactional id aborts its open
   * transaction), then read committed offsets + metadata, restore and seek there.
   */
  private async initTask(p: number): Promise<void> {
    const { config } = this;
    let producer = this.producers.get(p);
    if (!producer) {
      producer = this.kafka.producer({
        transactionalId: `${config.transactionalIdPrefix}-${p}`,
        idempotent: true,
        maxInFlightRequests: 1,
        transactionTimeout: 60_000,
      });
      await producer.connect();
      this.producers.set(p, producer);
    }
    // kafkajs initialises the transactional producer id lazily, at the first transaction(). Force it now:
    // InitProducerId fences the previous owner and waits until its last transaction (or our own previous
    // one, after an error) has completed, so the offsets read next are the final committed ones.
    await (await producer.transaction()).abort();
    const topics = this.driver.topics;
    const fetched = await this.admin.fetchOffsets({ groupId: config.consumerGroupId, topics: [...topics] });
    const committed = topics.map((topic): Committed => {
      const entry = fetched.find((t) => t.topic === topic)?.partitions.find((q) => q.partition === p);
      const offset = entry && Number(entry.offset) >= 0 ? Number(entry.offset) : null;
      return { offset, metadata: entry?.metadata ?? null };
    }) as [Committed, Committed];
    const seekTo: number[] = [];
    for (const [index, topic] of topics.entries()) {
      let offset = committed[index]!.offset;
      if (offset === null) {
        const ends = await this.admin.fetchTopicOffsets(topic);
        offset = Number(ends.find((e) => e.partition === p)?.low ?? 0);
      }
      seekTo.push(offset);
    }
    // No I/O after this point: the task state and the consumer positions change together.
    this.driver.assign(p, committed, Date.now());
    topics.forEach((topic, index) =>
      this.consumer!.seek({ topic, partition: p, offset: String(seekTo[index]) }),
    );
    this.logger.info({ task: p, committed }, 'task restored from committed offsets');
  }

  private async onBatch({ batch, isStale, resolveOffset, heartbeat }: EachBatchPayload): Promise<void> {
    if (this.stopped) return;
    const p = batch.partition;
    if (!this.driver.has(p)) await this.initTask(p);
    if (isStale()) return; // a seek (restore) happened after this batch was fetched
    const kind = batch.topic === this.config.podAllocationsTopic ? 'pod' : 'bandwidth';
    const serde = kind === 'pod' ? this.serdes.pod : this.serdes.bandwidth;
    const messages = batch.messages;
    const records: DriverRecord[] = new Array<DriverRecord>(messages.length);
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]!;
      // Synchronous for known schema ids: no await (and no promise) per record on the hot path.
      const decoded =
        decodeSampleKnown(kind, serde, message.value) ?? (await decodeSample(kind, serde, message.value));
      records[i] = { topic: batch.topic, partition: p, offset: Number(message.offset), decoded };
    }
    const now = Date.now();
    this.driver.observeEnd(batch.topic, p, Number(batch.highWatermark));
    let step: Step;
    try {
      step = this.driver.process(p, records, now);
      this.driver.markConsumed(batch.topic, p, Number(batch.lastOffset()) + 1);
      await this.commit(p, step, messages);
    } catch (error) {
      await this.recover(p, error);
      return;
    }
    resolveOffset(batch.lastOffset());
    this.observe(p, step);
    await heartbeat();
  }

  private async onTick(): Promise<void> {
    if (this.stopped || this.driver.assigned().length === 0) return;
    for (const topic of this.driver.topics) {
      for (const end of await this.admin.fetchTopicOffsets(topic)) {
        this.driver.observeEnd(topic, end.partition, Number(end.high));
      }
    }
    for (const p of this.driver.assigned()) {
      const step = this.driver.tick(p, Date.now());
      const unchanged = step.commits.length === 0 || this.lastCommit.get(p) === JSON.stringify(step.commits);
      if (step.events.length === 0 && unchanged) continue;
      try {
        await this.commit(p, step, []);
      } catch (error) {
        await this.recover(p, error);
        continue;
      }
      this.observe(p, step);
    }
  }

  /** One transaction: dead letters, late records, usage events, then the offsets with their metadata. */
  private async commit(p: number, step: Step, batch: readonly KafkaMessage[]): Promise<void> {
    const { config } = this;
    const producer = this.producers.get(p);
    if (!producer) throw new Error(`no producer for task ${p}`);
    // Only dead letters and late records need their source bytes, so index the batch only when there are
    // some (instead of one `${topic}:${offset}` key per record). All refs of a step are from the batch.
    let byOffset: Map<string, KafkaMessage> | undefined;
    const source = (ref: { offset: number }) => {
      byOffset ??= new Map(batch.map((m) => [m.offset, m]));
      const m = byOffset.get(String(ref.offset));
      return { key: m?.key ?? null, value: m?.value ?? null, headers: m?.headers };
    };
    const deadLetters: Message[] = step.deadLetters.map((d) =>
      deadLetterMessage(
        { ...d, offset: String(d.offset), ...source(d) },
        { code: d.code, message: d.reason, service: SERVICE },
      ),
    );
    const late: Message[] = step.late.map((l) => {
      const message = deadLetterMessage(
        { ...l, offset: String(l.offset), ...source(l) },
        { code: 'GPUM_LATE_SAMPLE', message: l.reason, service: SERVICE },
      );
      return { ...message, headers: { ...message.headers, [DEAD_LETTER_HEADERS.reason]: l.reason } };
    });
    const events: Message[] = step.events.map((e) => ({
      key: e.subject,
      value: this.serdes.usage.encode(e),
    }));
    const transaction = await producer.transaction();
    try {
      if (deadLetters.length > 0)
        await transaction.send({ topic: config.deadLettersTopic, messages: deadLetters });
      if (late.length > 0) await transaction.send({ topic: config.lateSamplesTopic, messages: late });
      if (events.length > 0) await transaction.send({ topic: config.usageEventsTopic, messages: events });
      if (step.commits.length > 0) {
        await retryConcurrent(() =>
          transaction.sendOffsets({
            consumerGroupId: config.consumerGroupId,
            topics: step.commits.map((c) => ({
              topic: c.topic,
              partitions: [{ partition: c.partition, offset: String(c.offset), metadata: c.metadata }],
            })),
          }),
        );
      }
      await transaction.commit();
    } catch (error) {
      await transaction.abort().catch(() => undefined);
      this.metrics.transactions.inc({ outcome: 'aborted' });
      throw error;
    }
    this.metrics.transactions.inc({ outcome: 'committed' });
    this.logger.debug(
      {
        task: p,
        commits: step.commits,
        events: step.events.map((e) => `${e.subject}@${e.windowStartMs}:${e.sampleCount}`),
        late: step.late.length,
        dead: step.deadLetters.length,
        replayed: step.replayed,
      },
      'transaction committed',
    );
    this.lastCommit.set(p, JSON.stringify(step.commits));
    const now = Date.now();
    for (const e of step.events) this.metrics.emitLatency.observe(Math.max(0, now - e.windowEndMs) / 1000);
  }

  /** A failed transaction leaves the task's memory ahead of Kafka: drop it and rebuild from the commit. */
  private async recover(p: number, error: unknown): Promise<void> {
    this.logger.warn(
      { task: p, err: error, message: errorMessage(error) },
      'transaction failed; restoring task',
    );
    this.driver.revoke(p);
    const producer = this.producers.get(p);
    this.producers.delete(p);
    await producer?.disconnect().catch(() => undefined);
    await this.initTask(p);
  }

  private observe(p: number, step: Step): void {
    const m = this.metrics;
    m.dedupeHits.inc(step.dedupeHits);
    m.late.inc(
      { policy: this.config.latePolicy },
      step.late.length + step.events.filter((e) => e.correction).length,
    );
    m.deadLettered.inc(step.deadLetters.length);
    m.events.inc(step.events.length);
    m.replayed.inc(step.replayed);
    let windows = 0;
    let groups = 0;
    let ids = 0;
    for (const q of this.driver.assigned()) {
      const task = this.driver.task(q)!;
      windows += task.openWindows;
      groups += task.openGroups;
      ids += task.dedupeSize;
      if (q === p) {
        for (const input of task.inputs) {
          if (input.end !== null && input.position !== null)
            m.consumerLag.set(
              { topic: input.topic, partition: String(p) },
              Math.max(0, input.end - input.position),
            );
        }
      }
    }
    m.openWindows.set(windows);
    m.openGroups.set(groups);
    m.dedupeIds.set(ids);
  }
}

/**
 * Right after a commit the coordinator is still writing its markers and answers the next transaction's
 * AddOffsetsToTxn with CONCURRENT_TRANSACTIONS, which kafkajs does not retry there (the Java client does).
 */
async function retryConcurrent<T>(work: () => Promise<T>, attempts = 20): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if ((error as { type?: string }).type !== 'CONCURRENT_TRANSACTIONS' || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10 * attempt));
    }
  }
}
