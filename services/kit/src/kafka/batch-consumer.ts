import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { BatchAccumulator, type Batch, type BatchItem } from './batch-accumulator.js';
import {
  backoffCeiling,
  backoffDelay,
  DEFAULT_BACKOFF,
  sleepUnlessAborted,
  type BackoffPolicy,
} from '../runtime/backoff.js';
import type { SourceRecord } from './dead-letter.js';
import { errorMessage, PoisonRecordError } from '../contracts/errors.js';
import { heartbeatIntervalFor, waitWhileHeartbeating } from '../runtime/heartbeat-wait.js';
import type { Logger } from '../runtime/logger.js';

/** The final flush at close: a few quick tries, not the back-off of a running consumer. */
const FINAL_FLUSH_ATTEMPTS = 3;
const FINAL_FLUSH_BACKOFF: BackoffPolicy = { initialMs: 250, maxMs: 1_000 };

export interface BatchConsumerOptions<T> {
  kafka: Kafka;
  groupId: string;
  topics: readonly string[];
  logger: Logger;
  maxRows: number;
  maxWaitMs: number;
  backoff?: BackoffPolicy;
  /** How long the group waits for a silent member (e.g. one that was SIGKILLed) before rebalancing. */
  sessionTimeoutMs?: number;
  /** Turns a record into an item; throws PoisonRecordError for a record that can never be processed. */
  decode(source: SourceRecord): Promise<T>;
  /** Writes a poison record to the dead-letter topic; retried until it succeeds. */
  deadLetter(source: SourceRecord, error: PoisonRecordError): Promise<void>;
  /** Writes a batch to the sink; throws to have the whole batch retried. Must be idempotent. */
  flush(items: ReadonlyArray<BatchItem<T>>): Promise<void>;
  /** Observability hooks (metrics). */
  onFlushed?(items: number, ms: number): void;
  onRetry?(stage: 'decode' | 'dead-letter' | 'flush', error: unknown, attempt: number): void;
}

/**
 * Consume → batch → flush → commit, at least once into an idempotent sink. Offsets are committed only
 * after the sink acknowledged every record before them (a dead-lettered record counts once its dead letter
 * is written), so a crash re-reads and re-writes, never skips. A failing flush is retried with capped
 * backoff, forever: the batch stays in memory and the consumer stops taking new records once the batch is
 * full (heartbeating meanwhile, so the group does not evict it while the sink is down for minutes).
 * Reads read_committed.
 *
 * Nothing is written twice without a crash (a sink like OpenMeter may not dedupe): a flushed batch is never
 * flushed again, even when its commit fails (its offsets are kept and committed later, and records below
 * them that kafkajs fetches again are skipped). kafkajs has no revoke callback and, after every rebalance,
 * fetches each assigned partition again from its committed offset; so when a rebalance starts, what was
 * flushed is committed while the old generation may still commit, and on GROUP_JOIN the records collected
 * but not flushed are dropped (they come again from the committed offset, here or at the new owner) along
 * with everything known of partitions no longer assigned, which are never committed. What remains: a crash
 * (or a commit that cannot land before the partition moves) between a flush and its commit.
 */
export class BatchConsumer<T> {
  private readonly consumer: Consumer;
  private readonly accumulator: BatchAccumulator<T>;
  private readonly backoff: BackoffPolicy;
  private readonly stopping = new AbortController();
  private lock: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private flushFailures = 0;
  private retryNotBefore = 0;
  private connected = false;
  private listening = false;
  private closed: Promise<void> | undefined;
  /** Bumped on every GROUP_JOIN: a flush that started before it must not put its batch back. */
  private generation = 0;
  /** Between REBALANCING and GROUP_JOIN: flush nothing new (its commit could not land). */
  private rebalancing = false;
  /** Per partition, the next offset after what was flushed: records below it are never flushed again. */
  private readonly flushedUpTo = new Map<string, Offset>();
  /** Flushed offsets not yet committed. */
  private readonly toCommit = new Map<string, Offset>();
  /** The last flush failed asking for newer records (a sink judging a batch by what comes after it). */
  private acceptMore = false;
  /** The partitions of the last GROUP_JOIN. */
  private assigned = new Set<string>();
  /** A decode is being retried (e.g. the schema registry is down): not ready until a record decodes. */
  private decodeRetrying = false;
  /** kafkajs's heartbeat interval, and how often a handler that waits (backoff, a slow flush) heartbeats. */
  private readonly heartbeatIntervalMs: number;

  constructor(private readonly options: BatchConsumerOptions<T>) {
    this.accumulator = new BatchAccumulator<T>(options.maxRows, options.maxWaitMs);
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    const sessionTimeoutMs = options.sessionTimeoutMs ?? 30_000;
    this.heartbeatIntervalMs = heartbeatIntervalFor(sessionTimeoutMs);
    this.consumer = options.kafka.consumer({
      groupId: options.groupId,
      readUncommitted: false,
      maxWaitTimeInMs: Math.min(1000, Math.max(50, options.maxWaitMs)),
      sessionTimeout: sessionTimeoutMs,
      heartbeatInterval: this.heartbeatIntervalMs,
    });
  }

  get ready(): boolean {
    return this.connected && !this.decodeRetrying;
  }

  /**
   * Resolves once the consumer runs; `onFatal` is told when kafkajs gives up (the process should exit).
   * May be called again after it failed (a start-up retry): the listeners are added once.
   */
  async start(fromBeginning: boolean, onFatal: (error: unknown) => void): Promise<void> {
    if (!this.listening) {
      this.listening = true;
      this.consumer.on(this.consumer.events.CRASH, (event) => {
        this.connected = false;
        if (!event.payload.restart) onFatal(event.payload.error);
      });
      this.consumer.on(this.consumer.events.REBALANCING, () => {
        this.rebalancing = true;
        // kafkajs rejoins without waiting for us: a best effort to commit the old generation's flushes.
        void this.withLock(() => this.commitFlushed()).catch((error: unknown) =>
          this.options.logger.warn(
            { err: errorMessage(error) },
            'commit before the rebalance failed; committing after it',
          ),
        );
      });
      this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
        this.onAssigned(event.payload.memberAssignment);
        this.connected = true;
      });
    }
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...this.options.topics], fromBeginning });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.eachBatch(payload),
    });
    const tick = Math.max(20, Math.min(500, Math.floor(this.options.maxWaitMs / 4)));
    this.timer = setInterval(() => void this.onTimer(), tick);
  }

  /**
   * Stops retrying, tries one last flush while the consumer still runs (kafkajs silently skips commits once
   * stopped; what is not committed is re-read on the next start), then stops and disconnects.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.stopping.abort();
      clearInterval(this.timer);
      await this.withLock(async () => {
        // A few tries, 250 ms then 500 ms apart: a flushed batch whose commit does not land is sent again
        // by the next owner.
        for (let attempt = 0; attempt < FINAL_FLUSH_ATTEMPTS; attempt++) {
          try {
            await this.flushOnce();
            return;
          } catch (error) {
            this.options.logger.warn(
              { err: errorMessage(error), attempt, uncommittedPartitions: this.toCommit.size },
              'final flush or commit failed; what is not committed will be re-read',
            );
            if (attempt + 1 < FINAL_FLUSH_ATTEMPTS)
              await sleepUnlessAborted(backoffCeiling(attempt, FINAL_FLUSH_BACKOFF));
          }
        }
      });
      await this.consumer.stop().catch(() => undefined);
      await this.consumer.disconnect();
      this.connected = false;
    })();
    return this.closed;
  }

  /**
   * After a join kafkajs reads every assigned partition from its committed offset: what was collected but
   * not flushed comes again (here or at the new owner), so it is dropped; flushed offsets are kept only for
   * partitions still assigned (the others are someone else's to commit).
   */
  private onAssigned(assignment: Record<string, number[]>): void {
    this.generation += 1;
    this.rebalancing = false;
    const assigned = new Set(
      Object.entries(assignment).flatMap(([topic, partitions]) =>
        partitions.map((p) => partitionKey(topic, p)),
      ),
    );
    this.assigned = assigned;
    const dropped = this.accumulator.take();
    if (dropped.items.length > 0 || dropped.offsets.size > 0) {
      this.options.logger.info(
        { records: dropped.items.length },
        'rebalanced: dropped records not yet flushed (read again from the committed offset)',
      );
    }
    for (const map of [this.flushedUpTo, this.toCommit]) {
      for (const key of map.keys()) if (!assigned.has(key)) map.delete(key);
    }
    this.flushFailures = 0;
    this.retryNotBefore = 0;
    this.acceptMore = false;
  }

  /** Heartbeats; when the group is rebalancing, commits what was flushed first (kafkajs rejoins after us). */
  private async heartbeatOrCommit(heartbeat: () => Promise<void>): Promise<void> {
    try {
      await heartbeat();
    } catch (error) {
      if (isRebalancing(error)) {
        this.rebalancing = true;
        // The coordinator still takes the old generation's commits while it prepares the rebalance.
        await this.withLock(() => this.commitFlushed()).catch((failure: unknown) =>
          this.options.logger.warn({ err: errorMessage(failure) }, 'commit before the rebalance failed'),
        );
      }
      throw error;
    }
  }

  private async eachBatch(payload: EachBatchPayload) {
    const { batch, resolveOffset, isRunning, isStale } = payload;
    const heartbeat = () => this.heartbeatOrCommit(payload.heartbeat);
    // A flush in flight from before a rebalance decides which of these records were flushed already.
    await this.lock;
    for (const message of batch.messages) {
      if (!isRunning() || isStale()) return;
      const source = sourceRecord(batch.topic, batch.partition, message);
      const floor = this.flushedUpTo.get(partitionKey(batch.topic, batch.partition));
      if (floor && BigInt(message.offset) < BigInt(floor.offset)) {
        // Flushed before a rebalance or a failed commit; fetched again from the committed offset.
        resolveOffset(message.offset);
        continue;
      }
      const item = await this.decodeOrDeadLetter(source, heartbeat);
      if (item === undefined) return; // stopping
      if (item === null) this.accumulator.skip(source, Date.now());
      else this.accumulator.add({ value: item.value, source }, Date.now());
      resolveOffset(message.offset);
      // A held batch that asked for newer records takes up to another batch of them before blocking.
      const limit = this.acceptMore ? 2 * this.options.maxRows : this.options.maxRows;
      if (this.accumulator.size >= limit) {
        if (!(await this.flushUntilDone(heartbeat))) return;
      }
    }
    if (this.due()) await this.flushUntilDone(heartbeat);
    await heartbeat();
  }

  /** A batch is due, or flushed offsets wait for their commit. */
  private due(): boolean {
    return this.accumulator.due(Date.now()) || this.toCommit.size > 0;
  }

  /** The item, null when the record was dead-lettered, undefined when stopping. */
  private async decodeOrDeadLetter(
    source: SourceRecord,
    heartbeat: () => Promise<void>,
  ): Promise<{ value: T } | null | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        const value = await this.options.decode(source);
        this.decodeRetrying = false;
        return { value };
      } catch (error) {
        if (error instanceof PoisonRecordError) {
          this.decodeRetrying = false;
          return (await this.deadLetterUntilDone(source, error, heartbeat)) ? null : undefined;
        }
        this.decodeRetrying = true;
        this.options.onRetry?.('decode', error, attempt);
        this.options.logger.warn({ err: error, attempt }, 'decode failed (retriable); retrying');
        if (!(await this.pause(attempt, heartbeat))) return undefined;
      }
    }
  }

  private async deadLetterUntilDone(
    source: SourceRecord,
    error: PoisonRecordError,
    heartbeat: () => Promise<void>,
  ): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.options.deadLetter(source, error);
        this.options.logger.warn(
          { topic: source.topic, partition: source.partition, offset: source.offset, code: error.code },
          `dead-lettered a poison record: ${error.message}`,
        );
        return true;
      } catch (failure) {
        this.options.onRetry?.('dead-letter', failure, attempt);
        this.options.logger.warn({ err: failure, attempt }, 'dead-letter write failed; retrying');
        if (!(await this.pause(attempt, heartbeat))) return false;
      }
    }
  }

  /** Flushes until the sink acknowledges; false when the consumer is stopping first. */
  private async flushUntilDone(heartbeat: () => Promise<void>): Promise<boolean> {
    for (;;) {
      if (!(await this.waitUntil(this.retryNotBefore, heartbeat))) return false;
      // A flush may outlast the session timeout (a slow insert, a POST near its timeout): without
      // heartbeats the member is evicted and its partitions re-read elsewhere, and re-posted to a sink
      // without dedupe. A rebalance reported meanwhile ends the batch; the flush goes on under the lock.
      if (await waitWhileHeartbeating(this.flushAttempt(), heartbeat, this.heartbeatIntervalMs)) return true;
      // The sink needs newer records to judge this batch: take them (the timer keeps retrying).
      if (this.acceptMore && this.accumulator.size < 2 * this.options.maxRows) return true;
    }
  }

  /** Time-based flushes while no records arrive. */
  private async onTimer(): Promise<void> {
    if (this.stopping.signal.aborted || !this.due()) return;
    await this.flushAttempt();
  }

  /**
   * One flush attempt, shared by the record path and the timer path: both honour one backoff state, so
   * neither retries sooner than the last failure (and a sink's Retry-After) allows. True when it flushed.
   */
  private flushAttempt(): Promise<boolean> {
    return this.withLock(async () => {
      if (Date.now() < this.retryNotBefore) return false;
      try {
        await this.flushOnce();
        this.flushFailures = 0;
        this.retryNotBefore = 0;
        this.acceptMore = false;
        return true;
      } catch (error) {
        this.options.onRetry?.('flush', error, this.flushFailures);
        this.options.logger.warn(
          { err: errorMessage(error), attempt: this.flushFailures },
          'flush failed; retrying',
        );
        this.acceptMore = wantsMoreRecords(error);
        const delay = Math.max(retryAfterOf(error), backoffDelay(this.flushFailures++, this.backoff));
        this.retryNotBefore = Date.now() + delay;
        return false;
      }
    });
  }

  /**
   * Flushes what was collected, then commits every flushed offset. A batch whose flush failed is put back
   * (unless a rebalance happened meanwhile: then it is read again); one that was flushed is never flushed
   * again, whether or not its commit lands: its offsets wait in `toCommit`.
   */
  private async flushOnce(): Promise<void> {
    // During a rebalance only commits: a batch flushed now might not be committed before the partition moves.
    if (!this.accumulator.empty && !this.rebalancing) {
      const started = Date.now();
      const generation = this.generation;
      const batch: Batch<T> = this.accumulator.take();
      try {
        if (batch.items.length > 0) await this.options.flush(batch.items);
      } catch (error) {
        if (generation === this.generation) this.accumulator.putBack(batch, Date.now());
        throw error;
      }
      this.recordFlushed(batch, generation);
      this.options.onFlushed?.(batch.items.length, Date.now() - started);
      this.options.logger.debug({ rows: batch.items.length, ms: Date.now() - started }, 'batch flushed');
    }
    await this.commitFlushed();
  }

  private recordFlushed(batch: Batch<T>, generation: number): void {
    for (const [key, entry] of batch.offsets) {
      // Flushed across a rebalance: only a partition we hold now can still be committed by us.
      if (generation !== this.generation && !this.assigned.has(key)) continue;
      for (const map of [this.flushedUpTo, this.toCommit]) {
        const current = map.get(key);
        if (!current || BigInt(current.offset) < BigInt(entry.offset)) map.set(key, entry);
      }
    }
  }

  private async commitFlushed(): Promise<void> {
    if (this.toCommit.size === 0) return;
    const offsets = [...this.toCommit.entries()];
    await this.consumer.commitOffsets(offsets.map(([, entry]) => entry));
    // Only what was committed: a flush may have moved an offset on meanwhile.
    for (const [key, entry] of offsets) if (this.toCommit.get(key) === entry) this.toCommit.delete(key);
  }

  /** Backs off for attempt n; false when stopping. */
  private pause(attempt: number, heartbeat: () => Promise<void>): Promise<boolean> {
    return this.waitUntil(Date.now() + backoffDelay(attempt, this.backoff), heartbeat);
  }

  /** Waits until `deadline` (epoch ms), heartbeating every few seconds; false when stopping. */
  private async waitUntil(deadline: number, heartbeat: () => Promise<void>): Promise<boolean> {
    while (!this.stopping.signal.aborted && Date.now() < deadline) {
      await sleepUnlessAborted(
        Math.min(this.heartbeatIntervalMs, deadline - Date.now()),
        this.stopping.signal,
      );
      await heartbeat();
    }
    return !this.stopping.signal.aborted;
  }

  private withLock<R>(work: () => Promise<R>): Promise<R> {
    const result = this.lock.then(work);
    this.lock = result.catch(() => undefined);
    return result;
  }
}

/** A sink that said when to come back (HTTP Retry-After) puts `retryAfterMs` on the error it throws. */
function retryAfterOf(error: unknown): number {
  const value = (error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;
}

/**
 * A sink that cannot judge a batch without newer records (the OpenMeter forwarder holding a rejected event
 * until OpenMeter accepts something after it) sets `wantsMoreRecords` on the error it throws.
 */
function wantsMoreRecords(error: unknown): boolean {
  return (error as { wantsMoreRecords?: unknown } | null)?.wantsMoreRecords === true;
}

type Offset = { topic: string; partition: number; offset: string };

function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** kafkajs's rebalance answers (REBALANCE_IN_PROGRESS, NOT_COORDINATOR, ILLEGAL_GENERATION), wrapped or not. */
function isRebalancing(error: unknown): boolean {
  for (let e = error as { type?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (
      e.type === 'REBALANCE_IN_PROGRESS' ||
      e.type === 'NOT_COORDINATOR_FOR_GROUP' ||
      e.type === 'ILLEGAL_GENERATION'
    )
      return true;
    e = e.cause as typeof e;
  }
  return false;
}

function sourceRecord(topic: string, partition: number, message: KafkaMessage): SourceRecord {
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key,
    value: message.value,
    headers: message.headers,
  };
}
