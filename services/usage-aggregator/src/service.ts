import { ConfigError, ErrorCodes, errorMessage, type UsageEvent } from '@gpu-meter/kit/contracts';
import {
  heartbeatIntervalFor,
  waitWhileHeartbeating,
  type Logger,
  type Readiness,
} from '@gpu-meter/kit/runtime';
import { retryConcurrentTransactions, sendInChunks, type TopicSerde } from '@gpu-meter/kit/kafka';
import type { Admin, Consumer, EachBatchPayload, Kafka, Message, Producer } from 'kafkajs';
import { taskAssigner } from './assigner.js';
import type { RunningConfig } from './config.js';
import { packValues } from './batch-transfer.js';
import { taskOf, type Committed, type Step, type TaskInput } from './driver.js';
import type { DriverReply, TaskGauges } from './driver-protocol.js';
import type { AggregatorMetrics } from './metrics.js';
import { isFencedError } from './fencing.js';
import { Outbox } from './outbox.js';
import type { RemoteDriver } from './remote-driver.js';
import { TaskTable } from './task-table.js';

/**
 * Past this many uncommitted records a task waits for its transaction in flight before taking more: it
 * bounds what a failed commit makes the task redo, and the memory of the outbox.
 */
const MAX_UNCOMMITTED_RECORDS = 50_000;

/** Batches handed to the driver worker and not yet answered: enough to keep both threads busy. */
const MAX_BATCHES_IN_WORKER = 4;

/**
 * One task's way out: its transactional producer, what it decided since the last transaction began, and
 * that transaction while it commits. A lane is replaced, never repaired: after a failure the task is
 * rebuilt from its committed offsets with a new lane.
 */
interface Lane {
  readonly producer: Producer;
  outbox: Outbox;
  committing: Promise<void> | undefined;
  /** The latest commit point enqueued, to skip idle ticks that would commit nothing new. */
  latestCommits: string;
  /** The task generation its outbox is filled for (see TaskTable). */
  generation: number;
}

/**
 * The Kafka shell around the driver: one consumer (read_committed, no auto-commit) on both raw topics,
 * one transactional producer per task. Three things overlap: this thread fetches, the driver worker
 * decodes and aggregates earlier batches, and each task's previous transaction commits. Batches, ticks and
 * rebalances are handed over one at a time (`exclusive`); a task's answers go to its outbox in order, and
 * its next transaction starts only when the previous one has committed. Everything that is decided lives
 * in the driver (see driver.ts); this file only moves bytes.
 */
export class AggregatorService {
  private readonly topics: [string, string];
  private readonly lanes = new Map<number, Lane>();
  /** Each owned task's state: pending, restoring, running (at a generation) or fenced; see task-table.ts. */
  private readonly taskTable: TaskTable;
  private readonly gauges = new Map<number, TaskGauges>();
  /** Batches in the worker, answered or not; see MAX_BATCHES_IN_WORKER. */
  private readonly inWorker = new Set<Promise<void>>();
  /** Partitions of each raw topic in the current assignment. */
  private assignment = new Map<string, number[]>();
  /** Partition counts of the raw topics when last looked at (ticks), to say once when they change. */
  private partitionCounts = new Map<string, number>();
  private consumer: Consumer | undefined;
  private ticker: NodeJS.Timeout | undefined;
  /** An idle tick is queued or running (see `tick`). */
  private tickPending = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** When a turn on the queue last finished without an error (see `readiness`). */
  private lastTurnEndedMs = Date.now();
  private stopped = false;
  ready = false;
  /** The consumer's heartbeat interval, also how often a batch waiting on back-pressure heartbeats. */
  private readonly heartbeatIntervalMs: number;

  constructor(
    private readonly config: RunningConfig,
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly driver: RemoteDriver,
    private readonly usageSerde: TopicSerde<UsageEvent>,
    private readonly logger: Logger,
    private readonly metrics: AggregatorMetrics,
    /** A task that cannot go on without an operator (e.g. committed offsets it refuses to guess from). */
    private readonly onFatal: (error: Error) => void,
  ) {
    this.topics = [config.podAllocationsTopic, config.bandwidthSamplesTopic];
    this.heartbeatIntervalMs = heartbeatIntervalFor(config.sessionTimeoutMs);
    this.taskTable = new TaskTable(2 * config.sessionTimeoutMs);
  }

  /** Batches, ticks and rebalances run one at a time: a task's state is never touched by two at once. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.then(
      () => void (this.lastTurnEndedMs = Date.now()),
      () => undefined,
    );
    return next;
  }

  /**
   * /readyz: tasks assigned, and batches, ticks and rebalances still finishing their turns. Idle, a tick
   * ends a turn every TICK_MS; a turn stuck (a commit or end offsets a broker does not answer, a worker that
   * does not reply) or failing (the broker down) for SESSION_TIMEOUT_MS shows here, not only in the bill.
   */
  readiness(nowMs = Date.now()): Readiness {
    if (!this.ready)
      return { ready: false, reason: 'no task assignment yet (joining the group, or the consumer crashed)' };
    const stalledMs = nowMs - this.lastTurnEndedMs;
    if (stalledMs > Math.max(this.config.sessionTimeoutMs, 3 * this.config.tickMs))
      return { ready: false, reason: `no batch, idle tick or rebalance has finished for ${stalledMs} ms` };
    return true;
  }

  /** `onConsumerLost`: kafkajs crashed the consumer and will not restart it (the process should exit). */
  async start(onConsumerLost: (error: unknown) => void): Promise<void> {
    const { config } = this;
    const consumer = this.kafka.consumer({
      groupId: config.consumerGroupId,
      readUncommitted: false,
      partitionAssigners: [taskAssigner(config.tasks)],
      // Partitions added to a raw topic reach the assignment at the next metadata refresh (a rebalance).
      metadataMaxAge: 30_000,
      sessionTimeout: config.sessionTimeoutMs,
      heartbeatInterval: this.heartbeatIntervalMs,
      maxBytesPerPartition: config.maxBytesPerPartition,
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      const assignment = new Map(
        this.topics.map((topic) => [
          topic,
          [...(payload.memberAssignment[topic] ?? [])].sort((a, b) => a - b),
        ]),
      );
      const assigned = [...new Set([...assignment.values()].flat().map((q) => taskOf(q, config.tasks)))].sort(
        (a, b) => a - b,
      );
      void this.exclusive(() => this.reassign(assigned, assignment)).then(
        () => {
          if (!this.ready) this.logger.info({ tasks: assigned }, 'aggregator ready');
          this.ready = true;
        },
        (error) => this.logger.error({ err: error }, 'task assignment failed'),
      );
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      // Not ready until kafkajs has restarted the consumer and the group assigned tasks again.
      this.ready = false;
      this.logger.error({ err: payload.error, restart: payload.restart }, 'consumer crashed');
      if (!payload.restart) onConsumerLost(payload.error);
    });
    try {
      await consumer.connect();
      await consumer.subscribe({
        topics: [config.podAllocationsTopic, config.bandwidthSamplesTopic],
        fromBeginning: true,
      });
    } catch (error) {
      // The start-up policy calls start() again: this consumer is dropped, not left half connected.
      await consumer.disconnect().catch(() => undefined);
      throw error;
    }
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.exclusive(() => this.onBatch(payload)),
    });
    this.ticker = setInterval(() => this.tick(), config.tickMs);
  }

  /**
   * The ticker's turn: an idle tick queued behind the batches and rebalances before it, unless one is
   * still queued or running. A batch waiting for its turn cannot heartbeat, so ticks slower than TICK_MS
   * (a loaded machine: two topics' end offsets, then the worker) must not pile up in front of it, or the
   * member is evicted at the session timeout (tick-backlog.test.ts).
   */
  private tick(): void {
    if (this.tickPending) return;
    this.tickPending = true;
    void this.exclusive(() => this.onTick())
      .catch((error) => this.logger.warn({ err: error }, 'idle tick failed; retrying next tick'))
      .finally(() => (this.tickPending = false));
  }

  /**
   * Commits what was decided while still in the group (best effort: what is not committed is redone by the
   * next owner), then leaves the group and closes the producers.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    await this.exclusive(async () => {
      await Promise.all(this.inWorker);
      for (const p of [...this.lanes.keys()]) await this.flush(p).catch(() => undefined);
    });
    await this.consumer?.disconnect();
    await this.exclusive(async () => {
      for (const lane of this.lanes.values()) await lane.producer.disconnect().catch(() => undefined);
      this.lanes.clear();
    });
  }

  /** After every rebalance: forget all task state and rebuild owned tasks from their committed offsets. */
  private async reassign(partitions: number[], assignment: Map<string, number[]>): Promise<void> {
    // What was decided but not committed is redone by whoever owns the task now; a transaction already in
    // flight must end before anyone (this instance included) reads the committed offsets.
    const dropped = this.taskTable.reassign(partitions);
    for (const lane of this.lanes.values()) lane.outbox = new Outbox();
    await Promise.all([...this.lanes.values()].map((lane) => lane.committing));
    this.assignment = assignment;
    for (const p of dropped) await this.driver.call({ op: 'revoke', task: p });
    this.gauges.clear();
    for (const [p, lane] of this.lanes) {
      if (!partitions.includes(p)) {
        await lane.producer.disconnect().catch(() => undefined);
        this.lanes.delete(p);
      }
    }
    for (const p of partitions) await this.initTask(p);
  }

  /**
   * Fence the previous owner (initTransactions with the task's transactional id aborts its open
   * transaction), then read committed offsets + metadata, restore and seek there.
   */
  private async initTask(p: number): Promise<void> {
    this.taskTable.beginRestore(p, Date.now());
    try {
      await this.restoreTask(p);
    } catch (error) {
      this.taskTable.restoreFailed(p);
      throw error;
    }
  }

  private async restoreTask(p: number): Promise<void> {
    const { config } = this;
    let lane = this.lanes.get(p);
    if (!lane) {
      const producer = this.kafka.producer({
        transactionalId: `${config.transactionalIdPrefix}-${p}`,
        idempotent: true,
        maxInFlightRequests: 1,
        transactionTimeout: 60_000,
      });
      await producer.connect();
      lane = { producer, outbox: new Outbox(), committing: undefined, latestCommits: '', generation: 0 };
      this.lanes.set(p, lane);
    }
    // kafkajs initialises the transactional producer id lazily, at the first transaction(). Force it now:
    // InitProducerId fences the previous owner and waits until its last transaction (or our own previous
    // one, after an error) has completed, so the offsets read next are the final committed ones.
    await (await lane.producer.transaction()).abort();
    const topics = this.topics;
    const fetched = await this.admin.fetchOffsets({ groupId: config.consumerGroupId, topics: [...topics] });
    // Every partition of either raw topic that this task owns (q ≡ p mod TASKS) in the assignment.
    const inputs: TaskInput[] = topics.flatMap((topic) =>
      (this.assignment.get(topic) ?? [])
        .filter((q) => taskOf(q, config.tasks) === p)
        .map((partition) => {
          const entry = fetched
            .find((t) => t.topic === topic)
            ?.partitions.find((q) => q.partition === partition);
          const offset = entry && Number(entry.offset) >= 0 ? Number(entry.offset) : null;
          const committed: Committed = { offset, metadata: entry?.metadata ?? null };
          return { topic, partition, committed };
        }),
    );
    const seekTo: number[] = [];
    for (const { topic, partition, committed } of inputs) {
      let offset = committed.offset;
      if (offset === null) {
        const ends = await this.admin.fetchTopicOffsets(topic);
        offset = Number(ends.find((e) => e.partition === partition)?.low ?? 0);
      }
      seekTo.push(offset);
    }
    const assigned = await this.driver
      .call({ op: 'assign', task: p, inputs, nowMs: Date.now() })
      .catch((error: Error) => {
        if (
          error.message.includes(ErrorCodes.OFFSET_METADATA_INVALID.code) ||
          error.message.includes(ErrorCodes.CONFIG_INVALID.code) ||
          error.message.startsWith('Invalid configuration')
        ) {
          this.ready = false;
          this.onFatal(error);
        }
        throw error;
      });
    // No I/O after this point: the task state and the consumer positions change together, the task
    // running only once every seek has been taken.
    inputs.forEach(({ topic, partition }, index) =>
      this.consumer!.seek({ topic, partition, offset: String(seekTo[index]) }),
    );
    lane.generation = this.taskTable.restored(p);
    if (assigned.gauges) this.gauges.set(p, assigned.gauges);
    lane.outbox = new Outbox();
    lane.latestCommits = '';
    this.logger.info(
      { task: p, committed: inputs.map((i) => ({ topic: i.topic, partition: i.partition, ...i.committed })) },
      'task restored from committed offsets',
    );
  }

  private async onBatch({ batch, isStale, resolveOffset, heartbeat }: EachBatchPayload): Promise<void> {
    if (this.stopped) return;
    const p = taskOf(batch.partition, this.config.tasks);
    // Back-pressure waits heartbeat meanwhile: a slow broker holding a commit must not get the member
    // evicted at the session timeout (a rebalance that would itself wait for that commit).
    const waitFor = (work: Promise<unknown>) =>
      waitWhileHeartbeating(work, heartbeat, this.heartbeatIntervalMs);
    if (this.taskTable.generationOf(p) === undefined) {
      // Held after a fence: the batch is read again by whoever owns the task now.
      if (!this.taskTable.restorable(p, Date.now())) return;
      // InitProducerId waits until the previous owner's open transaction has ended: on a slow broker
      // longer than a session. A rebalance reported meanwhile ends the batch, but only after the restore
      // has ended, so that it never runs beside the next assignment's restore.
      const restoring = this.initTask(p);
      await waitFor(restoring).catch(async (error: unknown) => {
        await restoring.catch(() => undefined);
        throw error;
      });
    }
    if (isStale()) return; // a seek (restore) happened after this batch was fetched
    const generation = this.taskTable.generationOf(p);
    if (generation === undefined) return; // not reached: a restore either runs the task or throws
    const messages = batch.messages;
    const values = packValues(messages.map((m) => m.value));
    const offsets = Float64Array.from(messages, (m) => Number(m.offset));
    const timestamps = Float64Array.from(messages, (m) => Number(m.timestamp));
    const answered = this.driver.call(
      {
        op: 'process',
        partition: batch.partition,
        topic: batch.topic,
        values,
        offsets,
        timestamps,
        highWatermark: Number(batch.highWatermark),
        nextOffset: Number(batch.lastOffset()) + 1,
        nowMs: Date.now(),
      },
      [values.bytes, offsets.buffer, timestamps.buffer],
    );
    // The batch is the worker's now; if its answer is an error, the task is restored and the batch fetched
    // again from the committed offsets.
    resolveOffset(batch.lastOffset());
    const applied = answered.then(
      (reply) => {
        if (!this.taskTable.isCurrent(p, generation)) return;
        this.enqueue(p, reply.step!, messages, messages.length);
        this.observe(p, reply);
      },
      (error: unknown) => {
        if (this.taskTable.isCurrent(p, generation)) this.fail(p, generation, error);
      },
    );
    this.inWorker.add(applied);
    void applied.finally(() => this.inWorker.delete(applied));
    if (this.inWorker.size >= MAX_BATCHES_IN_WORKER) await waitFor(Promise.race(this.inWorker));
    const lane = this.lanes.get(p);
    if (lane?.committing && lane.outbox.records >= MAX_UNCOMMITTED_RECORDS) await waitFor(lane.committing);
    await heartbeat();
  }

  private async onTick(): Promise<void> {
    if (this.stopped) return;
    // A task whose commit failed and whose restore failed too (e.g. broker down) is retried here.
    for (const p of this.taskTable.restorableTasks(Date.now())) await this.initTask(p);
    const running = this.taskTable.running();
    if (running.length === 0) return;
    const ends: Array<{ topic: string; partition: number; end: number }> = [];
    for (const topic of this.topics) {
      const offsets = await this.admin.fetchTopicOffsets(topic);
      this.watchPartitions(topic, offsets.length);
      for (const end of offsets) ends.push({ topic, partition: end.partition, end: Number(end.high) });
    }
    for (const [p, generation] of running) {
      const reply = await this.driver.call({
        op: 'tick',
        task: p,
        nowMs: Date.now(),
        ends: ends.filter((e) => taskOf(e.partition, this.config.tasks) === p),
      });
      if (!this.taskTable.isCurrent(p, generation)) continue;
      const step = reply.step!;
      const lane = this.lanes.get(p);
      const unchanged = step.commits.length === 0 || lane?.latestCommits === JSON.stringify(step.commits);
      if (step.events.length === 0 && unchanged) continue;
      this.enqueue(p, step, [], 0);
      this.observe(p, reply);
    }
  }

  /** Adds a step to the task's outbox and makes sure a transaction will carry it. */
  private enqueue(
    p: number,
    step: Step,
    batch: EachBatchPayload['batch']['messages'],
    records: number,
  ): void {
    const lane = this.lanes.get(p);
    if (!lane) throw new Error(`no producer for task ${p}`);
    lane.outbox.add(step, batch, records);
    if (step.commits.length > 0) lane.latestCommits = JSON.stringify(step.commits);
    this.startCommitting(p, lane);
  }

  /**
   * Unless a transaction is already in flight for the lane, commits its outbox, again and again while steps
   * keep arriving; a failure drops the task. `committing` is cleared in the same synchronous run that
   * finds the outbox empty, so a step enqueued after that always starts a new loop.
   */
  private startCommitting(p: number, lane: Lane): void {
    // The guard also makes the loop below reach an await before its `finally` can run, so `committing`
    // is never left holding a finished loop.
    if (lane.committing || lane.outbox.empty || this.lanes.get(p) !== lane) return;
    lane.committing = (async () => {
      try {
        while (!lane.outbox.empty && this.lanes.get(p) === lane) {
          const outbox = lane.outbox;
          const generation = lane.generation;
          lane.outbox = new Outbox();
          try {
            await this.transact(lane, outbox);
          } catch (error) {
            if (this.lanes.get(p) === lane) this.fail(p, generation, error);
            return;
          }
        }
      } finally {
        lane.committing = undefined;
      }
    })();
  }

  /** Commits everything in the task's outbox: waits until no transaction is in flight and nothing is left. */
  private async flush(p: number): Promise<void> {
    const lane = this.lanes.get(p);
    while (lane && this.lanes.get(p) === lane && (lane.committing || !lane.outbox.empty)) {
      this.startCommitting(p, lane);
      await lane.committing;
    }
  }

  /** One transaction: dead letters, late records, usage events, then the offsets with their metadata. */
  private async transact(lane: Lane, outbox: Outbox): Promise<void> {
    const { config } = this;
    const events = outbox.events.map((e) => ({ key: e.subject, value: this.usageSerde.encode(e) }));
    const transaction = await lane.producer.transaction();
    try {
      // In runs under the broker's record batch limit: a backlog can close thousands of groups at once.
      const send = (record: { topic: string; messages: Message[] }) => transaction.send(record);
      await sendInChunks(send, config.deadLettersTopic, outbox.deadLetters);
      await sendInChunks(send, config.lateSamplesTopic, outbox.late);
      await sendInChunks(send, config.usageEventsTopic, events);
      if (outbox.commits.length > 0) {
        await retryConcurrentTransactions(() =>
          transaction.sendOffsets({
            consumerGroupId: config.consumerGroupId,
            topics: outbox.commits.map((c) => ({
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
        commits: outbox.commits,
        steps: outbox.steps,
        records: outbox.records,
        events: outbox.events.map((e) => `${e.subject}@${e.windowStartMs}:${e.sampleCount}`),
        late: outbox.late.length,
        dead: outbox.deadLetters.length,
      },
      'transaction committed',
    );
    this.metrics.events.inc(outbox.events.length);
    this.metrics.deadLettered.inc(outbox.deadLetters.length);
    this.metrics.late.inc(
      { policy: this.config.latePolicy },
      outbox.late.length + outbox.events.filter((e) => e.correction).length,
    );
    const now = Date.now();
    for (const e of outbox.events) this.metrics.emitLatency.observe(Math.max(0, now - e.windowEndMs) / 1000);
  }

  /**
   * A failed transaction (or a batch the worker could not take) of `generation` leaves the task's memory
   * ahead of Kafka: drop the task and its lane at once, so no later answer or batch builds on them, then
   * rebuild the task from the committed offsets when its turn comes. A transaction of a generation already
   * dropped (by a rebalance) still takes its lane along, which is in error now.
   */
  private fail(p: number, generation: number, error: unknown): void {
    const fenced = isFencedError(error);
    if (fenced) {
      this.taskTable.fenced(p, generation, Date.now());
      this.logger.warn(
        { task: p, message: errorMessage(error) },
        'task fenced by a newer owner of its transactional id; waiting for the rebalance',
      );
    } else {
      this.taskTable.failed(p, generation);
      this.logger.warn({ task: p, err: error, message: errorMessage(error) }, 'task failed; restoring it');
    }
    this.gauges.delete(p);
    void this.driver.call({ op: 'revoke', task: p }).catch(() => undefined);
    const lane = this.lanes.get(p);
    if (lane) {
      this.lanes.delete(p);
      void lane.producer.disconnect().catch(() => undefined);
    }
    if (fenced) return;
    void this.exclusive(async () => {
      if (this.stopped || !this.taskTable.restorable(p, Date.now())) return;
      await this.initTask(p);
    }).catch((restoreError) =>
      this.logger.warn(
        { task: p, err: errorMessage(restoreError) },
        'task restore failed; retrying at the next tick',
      ),
    );
  }

  /**
   * A raw topic's partition count seen at a tick. Grown to another multiple of TASKS: its new partitions
   * join their tasks at the next rebalance (kafkajs notices at its metadata refresh), and a pod's samples
   * stay in its task throughout. Anything else would move pods and GPUs between tasks, where copies of one
   * sample would be counted twice: stop, naming the fix.
   */
  private watchPartitions(topic: string, count: number): void {
    const known = this.partitionCounts.get(topic);
    this.partitionCounts.set(topic, count);
    this.metrics.partitions.set({ topic }, count);
    if (known === count) return;
    if (count % this.config.tasks !== 0) {
      this.ready = false;
      this.onFatal(
        new ConfigError(
          'TASKS',
          `is ${this.config.tasks}, but ${topic} now has ${count} partitions (was ${known}): expand both raw ` +
            `topics to a multiple of ${this.config.tasks} (nothing was consumed from the new partitions)`,
        ),
      );
      return;
    }
    if (known !== undefined)
      this.logger.warn(
        { topic, partitions: count, was: known },
        'raw topic expanded; its new partitions join their tasks at the next rebalance',
      );
  }

  private observe(p: number, reply: DriverReply): void {
    const m = this.metrics;
    if (reply.step) {
      m.dedupeHits.inc(reply.step.dedupeHits);
      m.replayed.inc(reply.step.replayed);
    }
    if (!reply.gauges) return;
    this.gauges.set(p, reply.gauges);
    for (const { topic, partition, lag } of reply.gauges.lag)
      m.consumerLag.set({ topic, partition: String(partition) }, lag);
    const now = Date.now();
    for (const { topic, partition, wm } of reply.gauges.watermarks)
      if (wm !== null) m.watermarkLag.set({ topic, partition: String(partition) }, (wm - now) / 1000);
    let windows = 0;
    let groups = 0;
    let ids = 0;
    for (const g of this.gauges.values()) {
      windows += g.openWindows;
      groups += g.openGroups;
      ids += g.dedupeIds;
    }
    m.openWindows.set(windows);
    m.openGroups.set(groups);
    m.dedupeIds.set(ids);
  }
}
