import type { IHeaders } from 'kafkajs';
import { errorMessage } from '../contracts/errors.js';
import { backoffCeiling } from '../runtime/backoff.js';
import type { Logger } from '../runtime/logger.js';
import { chunksBySize, MAX_SEND_BYTES, messageBytes, tooLargeType } from './send-chunks.js';

export interface OutgoingMessage {
  readonly key: string;
  readonly value: Buffer | null;
  /** Another topic than the sender's own (a dead letter); one send never mixes topics. */
  readonly topic?: string;
  readonly headers?: IHeaders;
}

/** Why messages left the buffer unsent: a full buffer, a shutdown, or refused as too large with nowhere to go. */
export type DropReason = 'buffer_full' | 'shutdown' | 'too_large';

export interface BufferedSenderOptions {
  /** Messages kept while Kafka is unreachable; past this the oldest unsent ones are dropped, loudly. */
  readonly maxBuffered: number;
  readonly maxBatch?: number;
  /** Bytes per send (MAX_SEND_BYTES, half the broker's default max.message.bytes); lowered when the broker refuses. */
  readonly maxBatchBytes?: number;
  /** Waits between failed sends: `backoffCeiling` from this (default 200 ms) doubling up to retryMaxMs (5 s). */
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  readonly logger: Logger;
  /**
   * What to send instead of a message the broker refuses even alone (MESSAGE_TOO_LARGE): its dead-letter
   * form, or undefined to drop it (counted). Without it such a message is dropped, never retried forever.
   */
  readonly deadLetter?: (message: OutgoingMessage, reason: string) => OutgoingMessage | undefined;
  readonly onSent?: (count: number) => void;
  readonly onDropped?: (count: number, reason: DropReason) => void;
  readonly onSendError?: (error: unknown) => void;
}

/**
 * Rides out a Kafka outage: messages queue in memory and go out in order, in batches bounded by count and
 * bytes; a failed batch is retried (capped exponential back-off) before anything behind it. The queue is
 * bounded: past the bound the oldest messages not yet in flight are dropped with an error log and a count,
 * so memory stays flat during a long outage. Samples have deterministic ids, so a batch that was written
 * but not acknowledged and is sent again is deduplicated downstream.
 *
 * A batch the broker refuses as too large is never retried as it is (it would be refused forever while
 * the buffer fills and drops every tenant's samples): the byte bound is halved, and a message refused
 * alone is replaced by its dead-letter form. Only that answer does this; an outage just waits.
 */
export class BufferedSender {
  private readonly queue: OutgoingMessage[] = [];
  private readonly deadLetters = new WeakSet<OutgoingMessage>();
  private inFlight = 0;
  private pumping: Promise<void> | undefined;
  private closed = false;
  /** Set by close() once it has counted what is left: a send finishing later must not count it again. */
  private abandoned = false;
  private wake: (() => void) | undefined;
  private failures = 0;
  private maxBatchBytes: number;

  constructor(
    private readonly send: (messages: OutgoingMessage[]) => Promise<void>,
    private readonly options: BufferedSenderOptions,
  ) {
    if (!Number.isInteger(options.maxBuffered) || options.maxBuffered < 1) {
      throw new RangeError(`maxBuffered must be a positive integer, got ${options.maxBuffered}`);
    }
    this.maxBatchBytes = options.maxBatchBytes ?? MAX_SEND_BYTES;
  }

  get size(): number {
    return this.queue.length;
  }

  /** Queues messages and starts sending; returns how many messages were dropped to stay in bounds. */
  enqueue(messages: readonly OutgoingMessage[]): number {
    if (this.closed) throw new Error('BufferedSender is closed');
    this.queue.push(...messages);
    let dropped = 0;
    const excess = this.queue.length - this.options.maxBuffered;
    if (excess > 0) {
      // Never drop what is in flight: its outcome decides what is removed from the head.
      const droppable = Math.min(excess, this.queue.length - this.inFlight);
      this.queue.splice(this.inFlight, droppable);
      dropped = droppable;
      this.options.logger.error(
        { dropped, maxBuffered: this.options.maxBuffered },
        'send buffer full: dropping the oldest unsent samples (Kafka unreachable for too long)',
      );
      this.options.onDropped?.(dropped, 'buffer_full');
    }
    this.pumping ??= this.pump().finally(() => (this.pumping = undefined));
    return dropped;
  }

  /** The head of the queue that one send carries: one topic, at most maxBatch messages and maxBatchBytes. */
  private nextBatch(): OutgoingMessage[] {
    const topic = this.queue[0]?.topic;
    const limit = Math.min(this.queue.length, this.options.maxBatch ?? 500);
    let end = 0;
    while (end < limit && this.queue[end]!.topic === topic) end += 1;
    return chunksBySize(this.queue.slice(0, end), this.maxBatchBytes)[0] ?? [];
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0 && !this.closed) {
      const batch = this.nextBatch();
      this.inFlight = batch.length;
      try {
        await this.send(batch);
        if (this.abandoned) return;
        this.queue.splice(0, batch.length);
        this.inFlight = 0;
        if (this.failures > 0)
          this.options.logger.info({ after: this.failures }, 'sending again after failures');
        this.failures = 0;
        this.options.onSent?.(batch.length);
      } catch (error) {
        this.inFlight = 0;
        if (this.abandoned) return;
        this.options.onSendError?.(error);
        const tooLarge = tooLargeType(error);
        if (tooLarge !== undefined) {
          this.refusedAsTooLarge(batch, tooLarge);
          continue;
        }
        this.failures += 1;
        const delayMs = backoffCeiling(this.failures - 1, {
          initialMs: this.options.retryInitialMs ?? 200,
          maxMs: this.options.retryMaxMs ?? 5_000,
        });
        this.options.logger.warn(
          { err: errorMessage(error), buffered: this.queue.length, retryInMs: delayMs },
          'send failed; keeping the samples and retrying',
        );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delayMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
  }

  /** The broker's limit is below ours: send smaller batches from now on, or set aside a message too large alone. */
  private refusedAsTooLarge(batch: OutgoingMessage[], reason: string): void {
    if (batch.length > 1) {
      const bytes = batch.reduce((sum, message) => sum + messageBytes(message), 0);
      // The limit is the topic's, so it stays learnt; chunksBySize still sends one larger message alone.
      this.maxBatchBytes = Math.max(1, Math.floor(bytes / 2));
      this.options.logger.warn(
        { reason, messages: batch.length, bytes, maxBatchBytes: this.maxBatchBytes },
        'broker refused a batch as too large; sending smaller batches',
      );
      return;
    }
    const message = batch[0]!;
    const replacement = this.deadLetters.has(message)
      ? undefined
      : this.options.deadLetter?.(message, reason);
    if (replacement) {
      this.deadLetters.add(replacement);
      this.queue[0] = replacement;
      this.options.logger.warn(
        { reason, key: message.key.slice(0, 200), bytes: messageBytes(message), topic: replacement.topic },
        'broker refused a sample as too large even alone; dead-lettering it',
      );
      return;
    }
    this.queue.shift();
    this.options.logger.error(
      { reason, key: message.key.slice(0, 200), bytes: messageBytes(message), dropped: 1 },
      'broker refused a message as too large even alone and it has no dead-letter form; dropping it',
    );
    this.options.onDropped?.(1, 'too_large');
  }

  /** Waits until everything queued is sent, or the timeout passes; true when the queue is empty. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.queue.length === 0;
  }

  /**
   * Stops sending: waits up to `graceMs` for the batch in flight (a send to a missing topic can hang in
   * kafkajs's metadata retries far longer), then counts everything not acknowledged as dropped, with an
   * error log naming the count. Returns that count.
   */
  async close(graceMs = 1_000): Promise<number> {
    this.closed = true;
    this.wake?.();
    if (this.pumping) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.pumping, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    this.abandoned = true;
    const unsent = this.queue.length;
    this.queue.length = 0;
    if (unsent > 0) {
      this.options.logger.error(
        { dropped: unsent, reason: 'shutdown' },
        `closing with ${unsent} samples not acknowledged by Kafka: dropped`,
      );
      this.options.onDropped?.(unsent, 'shutdown');
    }
    return unsent;
  }
}
