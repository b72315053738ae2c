import type { Kafka, Producer } from 'kafkajs';
import { backoffCeiling, RECONNECT_BACKOFF } from './backoff.js';
import { BufferedSender, type OutgoingMessage } from './buffered-sender.js';
import { errorMessage } from './errors.js';
import type { Logger } from './logger.js';
import type { TopicSerde } from './serde.js';

export interface SamplePublisherOptions<T> {
  readonly kafka: Kafka;
  readonly serde: TopicSerde<T>;
  /**
   * The Kafka key of a sample: it picks the partition, so it must be a fact every copy of one observation
   * shares (podSampleKey, bandwidthSampleKey), never something replicas can disagree on.
   */
  readonly key: (sample: T) => string;
  readonly logger: Logger;
  readonly maxBuffered: number;
  readonly onSent?: (count: number) => void;
  readonly onDropped?: (count: number) => void;
  readonly onSendError?: (error: unknown) => void;
}

/**
 * A collector's way out: samples encoded with the topic's registered schema, keyed by `options.key`,
 * sent by an idempotent producer with acks=all through a bounded in-order buffer that outlives Kafka
 * outages. `start` waits for the registry (retrying) because nothing can be encoded without a schema id.
 */
export class SamplePublisher<T> {
  private readonly producer: Producer;
  private readonly sender: BufferedSender;
  private connected = false;
  private connecting: Promise<void> | undefined;

  constructor(private readonly options: SamplePublisherOptions<T>) {
    this.producer = options.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
    this.producer.on(this.producer.events.CONNECT, () => (this.connected = true));
    this.producer.on(this.producer.events.DISCONNECT, () => (this.connected = false));
    this.sender = new BufferedSender((messages) => this.sendBatch(messages), {
      maxBuffered: options.maxBuffered,
      logger: options.logger.child({ component: 'sender' }),
      ...(options.onSent ? { onSent: options.onSent } : {}),
      ...(options.onDropped ? { onDropped: options.onDropped } : {}),
      ...(options.onSendError ? { onSendError: options.onSendError } : {}),
    });
  }

  async start(signal?: AbortSignal): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.options.serde.register();
        break;
      } catch (error) {
        if (signal?.aborted) throw error;
        const delayMs = backoffCeiling(attempt, RECONNECT_BACKOFF);
        this.options.logger.warn(
          { err: errorMessage(error), retryInMs: delayMs },
          'schema registry not ready; retrying',
        );
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
    // Connecting (an idempotent producer's InitProducerId) can take long while the broker's coordinator
    // loads; samples wait in the buffer meanwhile rather than delaying the collector's start.
    void this.connect().catch((error: unknown) => {
      this.options.logger.warn({ err: errorMessage(error) }, 'Kafka not reachable yet; buffering');
    });
  }

  private connect(): Promise<void> {
    this.connecting ??= this.producer.connect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  get ready(): boolean {
    return this.connected;
  }

  get buffered(): number {
    return this.sender.size;
  }

  publish(samples: readonly T[]): number {
    if (samples.length === 0) return 0;
    const messages = samples.map((sample) => ({
      key: this.options.key(sample),
      value: this.options.serde.encode(sample),
    }));
    return this.sender.enqueue(messages);
  }

  private async sendBatch(messages: OutgoingMessage[]): Promise<void> {
    if (!this.connected) await this.connect();
    await this.producer.send({
      topic: this.options.serde.topic,
      acks: -1,
      messages: messages.map((message) => ({ key: message.key, value: message.value })),
    });
  }

  /** Gives the buffer `drainMs` to empty, then disconnects (abandoning a send still retrying). */
  async close(drainMs = 5_000): Promise<void> {
    await this.sender.drain(drainMs);
    await Promise.race([this.sender.close(), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
    await this.producer.disconnect();
  }
}
