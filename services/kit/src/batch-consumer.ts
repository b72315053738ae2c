import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { BatchAccumulator, type Batch, type BatchItem } from './batch-accumulator.js';
import { backoffDelay, DEFAULT_BACKOFF, sleepUnlessAborted, type BackoffPolicy } from './backoff.js';
import type { SourceRecord } from './dead-letter.js';
import { errorMessage, PoisonRecordError } from './errors.js';
import type { Logger } from './logger.js';

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

  constructor(private readonly options: BatchConsumerOptions<T>) {
    this.accumulator = new BatchAccumulator<T>(options.maxRows, options.maxWaitMs);
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.consumer = options.kafka.consumer({
      groupId: options.groupId,
      readUncommitted: false,
      maxWaitTimeInMs: Math.min(1000, Math.max(50, options.maxWaitMs)),
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: Math.min(3_000, Math.floor((options.sessionTimeoutMs ?? 30_000) / 3)),
    });
  }

  get ready(): boolean {
    return this.connected;
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
      this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
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
        try {
          await this.flushOnce();
        } catch (error) {
          this.options.logger.warn(
            { err: errorMessage(error) },
            'final flush failed; those records will be re-read',
          );
        }
      });
      await this.consumer.stop().catch(() => undefined);
      await this.consumer.disconnect();
      this.connected = false;
    })();
    return this.closed;
  }

  private async eachBatch({ batch, heartbeat, resolveOffset, isRunning, isStale }: EachBatchPayload) {
    for (const message of batch.messages) {
      if (!isRunning() || isStale()) return;
      const source = sourceRecord(batch.topic, batch.partition, message);
      const item = await this.decodeOrDeadLetter(source, heartbeat);
      if (item === undefined) return; // stopping
      if (item === null) this.accumulator.skip(source, Date.now());
      else this.accumulator.add({ value: item.value, source }, Date.now());
      resolveOffset(message.offset);
      if (this.accumulator.full()) {
        if (!(await this.flushUntilDone(heartbeat))) return;
      }
    }
    if (this.accumulator.due(Date.now())) await this.flushUntilDone(heartbeat);
    await heartbeat();
  }

  /** The item, null when the record was dead-lettered, undefined when stopping. */
  private async decodeOrDeadLetter(
    source: SourceRecord,
    heartbeat: () => Promise<void>,
  ): Promise<{ value: T } | null | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return { value: await this.options.decode(source) };
      } catch (error) {
        if (error instanceof PoisonRecordError) {
          return (await this.deadLetterUntilDone(source, error, heartbeat)) ? null : undefined;
        }
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
      if (await this.flushAttempt()) return true;
    }
  }

  /** Time-based flushes while no records arrive. */
  private async onTimer(): Promise<void> {
    if (this.stopping.signal.aborted || !this.accumulator.due(Date.now())) return;
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
        return true;
      } catch (error) {
        this.options.onRetry?.('flush', error, this.flushFailures);
        this.options.logger.warn(
          { err: errorMessage(error), attempt: this.flushFailures },
          'flush failed; retrying',
        );
        const delay = Math.max(retryAfterOf(error), backoffDelay(this.flushFailures++, this.backoff));
        this.retryNotBefore = Date.now() + delay;
        return false;
      }
    });
  }

  private async flushOnce(): Promise<void> {
    if (this.accumulator.empty) return;
    const started = Date.now();
    const batch: Batch<T> = this.accumulator.take();
    try {
      if (batch.items.length > 0) await this.options.flush(batch.items);
      await this.consumer.commitOffsets([...batch.offsets.values()]);
    } catch (error) {
      this.accumulator.putBack(batch, Date.now());
      throw error;
    }
    this.options.onFlushed?.(batch.items.length, Date.now() - started);
    this.options.logger.debug({ rows: batch.items.length, ms: Date.now() - started }, 'batch flushed');
  }

  /** Backs off for attempt n; false when stopping. */
  private pause(attempt: number, heartbeat: () => Promise<void>): Promise<boolean> {
    return this.waitUntil(Date.now() + backoffDelay(attempt, this.backoff), heartbeat);
  }

  /** Waits until `deadline` (epoch ms), heartbeating every few seconds; false when stopping. */
  private async waitUntil(deadline: number, heartbeat: () => Promise<void>): Promise<boolean> {
    while (!this.stopping.signal.aborted && Date.now() < deadline) {
      await sleepUnlessAborted(Math.min(2_000, deadline - Date.now()), this.stopping.signal);
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
