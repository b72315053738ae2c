import { errorMessage } from './errors.js';
import type { Logger } from './logger.js';

export interface OutgoingMessage {
  readonly key: string;
  readonly value: Buffer;
}

export interface BufferedSenderOptions {
  /** Messages kept while Kafka is unreachable; past this the oldest unsent ones are dropped, loudly. */
  readonly maxBuffered: number;
  readonly maxBatch?: number;
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  readonly logger: Logger;
  readonly onSent?: (count: number) => void;
  readonly onDropped?: (count: number) => void;
  readonly onSendError?: (error: unknown) => void;
}

/**
 * Rides out a Kafka outage: messages queue in memory and go out in order, in batches; a failed batch is
 * retried (capped exponential back-off) before anything behind it. The queue is bounded: past the bound
 * the oldest messages not yet in flight are dropped with an error log and a count, so memory stays flat
 * during a long outage. Samples have deterministic ids, so a batch that was written but not acknowledged
 * and is sent again is deduplicated downstream.
 */
export class BufferedSender {
  private readonly queue: OutgoingMessage[] = [];
  private inFlight = 0;
  private pumping: Promise<void> | undefined;
  private closed = false;
  private wake: (() => void) | undefined;
  private failures = 0;

  constructor(
    private readonly send: (messages: OutgoingMessage[]) => Promise<void>,
    private readonly options: BufferedSenderOptions,
  ) {
    if (!Number.isInteger(options.maxBuffered) || options.maxBuffered < 1) {
      throw new RangeError(`maxBuffered must be a positive integer, got ${options.maxBuffered}`);
    }
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
      this.options.onDropped?.(dropped);
    }
    this.pumping ??= this.pump().finally(() => (this.pumping = undefined));
    return dropped;
  }

  private async pump(): Promise<void> {
    const maxBatch = this.options.maxBatch ?? 500;
    while (this.queue.length > 0 && !this.closed) {
      const batch = this.queue.slice(0, maxBatch);
      this.inFlight = batch.length;
      try {
        await this.send(batch);
        this.queue.splice(0, batch.length);
        this.inFlight = 0;
        if (this.failures > 0)
          this.options.logger.info({ after: this.failures }, 'sending again after failures');
        this.failures = 0;
        this.options.onSent?.(batch.length);
      } catch (error) {
        this.inFlight = 0;
        this.failures += 1;
        this.options.onSendError?.(error);
        const delayMs = Math.min(
          this.options.retryMaxMs ?? 5_000,
          (this.options.retryInitialMs ?? 200) * 2 ** Math.min(this.failures - 1, 10),
        );
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

  /** Waits until everything queued is sent, or the timeout passes; true when the queue is empty. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.queue.length === 0;
  }

  /** Stops sending (after the batch in flight); unsent messages are reported and discarded. */
  async close(): Promise<number> {
    this.closed = true;
    this.wake?.();
    await this.pumping;
    const unsent = this.queue.length;
    if (unsent > 0) this.options.logger.error({ unsent }, 'closing with unsent samples');
    this.queue.length = 0;
    return unsent;
  }
}
