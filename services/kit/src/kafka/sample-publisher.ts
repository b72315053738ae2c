import type { IHeaders, Kafka, Producer } from 'kafkajs';
import { BufferedSender, type DropReason, type OutgoingMessage } from './buffered-sender.js';
import { env, schemas } from '../config/env.js';
import { DEAD_LETTER_HEADERS } from './dead-letter.js';
import { ErrorCodes, errorMessage } from '../contracts/errors.js';
import type { Logger } from '../runtime/logger.js';
import { MAX_SEND_BYTES, messageBytes } from './send-chunks.js';
import { valueSubject, type TopicSerde } from './serde.js';
import { retryWhileRetriable } from '../runtime/startup.js';

export const DEFAULT_COLLECTOR_DEAD_LETTERS_TOPIC = 'usage.collector-dead-letters.v1';

/**
 * Longest string field a sample carries by default. Kubernetes names are at most 253 characters and label
 * values 63; annotations (user, workloadId) and DCGM labels are unbounded and tenant- or exporter-written.
 */
export const DEFAULT_MAX_SAMPLE_STRING_LENGTH = 1024;

/**
 * Fields that make a sample what it is: its id, its key (the partition) and the parts its id hashes. They
 * are never truncated (two different pods would merge): a sample with one too long is dead-lettered.
 */
export const SAMPLE_IDENTITY_FIELDS = ['id', 'clusterId', 'podUid', 'gpuUuid', 'migInstanceId'] as const;

/** Each collector's output settings: where undeliverable samples go and how long a string may be. */
export const collectorOutputConfigSpec = {
  deadLetterTopic: env(
    'COLLECTOR_DEAD_LETTERS_TOPIC',
    schemas.nonEmpty(DEFAULT_COLLECTOR_DEAD_LETTERS_TOPIC),
    'Topic for samples that cannot be sent as they are (an identity field too long, too large for the broker even alone); created at start when missing.',
  ),
  maxSampleStringLength: env(
    'SAMPLE_MAX_STRING_LENGTH',
    schemas.int(DEFAULT_MAX_SAMPLE_STRING_LENGTH, 64, 64 * 1024),
    'Longest string field of a sample (user, workloadId, names, DCGM labels); longer ones are truncated with a marker and counted. Identity fields are never truncated: such a sample is dead-lettered.',
  ),
  topicReplicationFactor: env(
    'TOPIC_REPLICATION_FACTOR',
    schemas.int(1, 1),
    'Replication factor of the dead-letter topic when this service creates it.',
  ),
} as const;

/** A dead letter for something that is not a sample (a pod the model rejects); see SamplePublisher.deadLetter. */
export interface ObjectDeadLetter {
  /** The Kafka key: the one its samples would have had, so it sits in their partition. */
  readonly key: string;
  readonly value: Buffer;
  /** Error code header (GPUM_...): what the object is and what went wrong. */
  readonly code: string;
  /** Reason header: a short label, as in the metrics. */
  readonly reason: string;
  /** Error message header: the detail. */
  readonly message: string;
}

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
  /** Where samples go that cannot be sent as they are; without it they are dropped (logged, counted). */
  readonly deadLetterTopic?: string;
  /** Named in the dead letters' service header. */
  readonly service?: string;
  readonly maxStringLength?: number;
  /** Largest encoded sample sent as it is (MAX_SEND_BYTES); a larger one is dead-lettered. */
  readonly maxMessageBytes?: number;
  readonly identityFields?: readonly string[];
  readonly onSent?: (count: number) => void;
  readonly onDropped?: (count: number, reason: DropReason) => void;
  readonly onDeadLettered?: (count: number, reason: string) => void;
  readonly onTruncated?: (field: string) => void;
  readonly onSendError?: (error: unknown) => void;
}

/** `value` cut to at most `max` characters, ending in a marker naming its length (deterministic). */
export function truncateString(value: string, max: number): string {
  if (value.length <= max) return value;
  const marker = `…[truncated from ${value.length} chars]`;
  let keep = Math.max(0, max - marker.length);
  // Never split a surrogate pair: half of one encodes as U+FFFD.
  const last = value.charCodeAt(keep - 1);
  if (keep > 0 && last >= 0xd800 && last <= 0xdbff) keep -= 1;
  return value.slice(0, keep) + marker;
}

/**
 * A collector's way out: samples encoded with the topic's registered schema, keyed by `options.key`,
 * sent by an idempotent producer with acks=all through a bounded in-order buffer that outlives Kafka
 * outages. `start` waits for the registry (retrying while retriable) because nothing can be encoded
 * without a schema id.
 *
 * Every sample is bounded before it is encoded: a string field over `maxStringLength` is truncated with a
 * marker (the same on every replica, so ids and dedupe are untouched) and counted; a sample whose identity
 * field is too long, or whose encoding exceeds `maxMessageBytes`, or that the broker refuses even alone,
 * goes to the dead-letter topic with headers giving the reason. One tenant's oversized input therefore
 * never holds up the others' samples.
 */
export class SamplePublisher<T> {
  private readonly producer: Producer;
  private readonly sender: BufferedSender;
  private readonly maxStringLength: number;
  private readonly maxMessageBytes: number;
  private readonly identityFields: ReadonlySet<string>;
  private connected = false;
  private connecting: Promise<void> | undefined;

  constructor(private readonly options: SamplePublisherOptions<T>) {
    this.maxStringLength = options.maxStringLength ?? DEFAULT_MAX_SAMPLE_STRING_LENGTH;
    this.maxMessageBytes = options.maxMessageBytes ?? MAX_SEND_BYTES;
    this.identityFields = new Set(options.identityFields ?? SAMPLE_IDENTITY_FIELDS);
    this.producer = options.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
    this.producer.on(this.producer.events.CONNECT, () => (this.connected = true));
    this.producer.on(this.producer.events.DISCONNECT, () => (this.connected = false));
    this.sender = new BufferedSender((messages) => this.sendBatch(messages), {
      maxBuffered: options.maxBuffered,
      maxBatchBytes: this.maxMessageBytes,
      logger: options.logger.child({ component: 'sender' }),
      deadLetter: (message, reason) =>
        this.deadLetterSample(message, {
          code: ErrorCodes.SAMPLE_TOO_LARGE.code,
          reason: 'message_too_large',
          message: `the broker refused the sample even alone (${reason}, ${messageBytes(message)} bytes)`,
        }),
      ...(options.onSent ? { onSent: options.onSent } : {}),
      ...(options.onDropped ? { onDropped: options.onDropped } : {}),
      ...(options.onSendError ? { onSendError: options.onSendError } : {}),
    });
  }

  async start(signal?: AbortSignal): Promise<void> {
    await retryWhileRetriable(
      `schema registry subject ${valueSubject(this.options.serde.topic)}`,
      () => this.options.serde.register(),
      { logger: this.options.logger, ...(signal ? { signal } : {}) },
    );
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
    const messages: OutgoingMessage[] = [];
    let dropped = 0;
    for (const sample of samples) {
      const message = this.message(sample);
      if (message) messages.push(message);
      else dropped += 1;
    }
    return dropped + (messages.length > 0 ? this.sender.enqueue(messages) : 0);
  }

  /** The sample as it is sent: strings capped, or its dead-letter form; undefined when it has none. */
  private message(sample: T): OutgoingMessage | undefined {
    const key = this.options.key(sample);
    const capped: Record<string, unknown> = { ...(sample as Record<string, unknown>) };
    const tooLong: string[] = [];
    for (const [field, value] of Object.entries(capped)) {
      if (typeof value !== 'string' || value.length <= this.maxStringLength) continue;
      if (this.identityFields.has(field)) {
        tooLong.push(field);
        continue;
      }
      capped[field] = truncateString(value, this.maxStringLength);
      this.options.onTruncated?.(field);
    }
    if (tooLong.length > 0) {
      return this.deadLetterSample(
        { key, value: this.options.serde.encode(sample) },
        {
          code: ErrorCodes.SAMPLE_IDENTITY_TOO_LONG.code,
          reason: 'identity_too_long',
          message: `identity field(s) ${tooLong.join(', ')} over ${this.maxStringLength} characters`,
        },
      );
    }
    const message = { key, value: this.options.serde.encode(capped as T) };
    const bytes = messageBytes(message);
    if (bytes <= this.maxMessageBytes) return message;
    return this.deadLetterSample(message, {
      code: ErrorCodes.SAMPLE_TOO_LARGE.code,
      reason: 'message_too_large',
      message: `encoded sample is ${bytes} bytes, over ${this.maxMessageBytes}`,
    });
  }

  /**
   * Sends what the collector could not turn into samples at all (a pod the model rejects) to the
   * dead-letter topic, in order with the samples through the same buffer. `value` describes the object
   * (JSON), not a sample's encoding: the error code tells the two apart. Neither logged nor counted here:
   * the caller knows the object and logs it once. Returns how many were dropped (no dead-letter topic, or
   * to stay in the buffer's bound).
   */
  deadLetter(letters: readonly ObjectDeadLetter[]): number {
    const topic = this.options.deadLetterTopic;
    if (letters.length === 0 || topic === undefined) return letters.length;
    return this.sender.enqueue(
      letters.map((letter) => this.deadLetterForm(topic, { key: letter.key, value: letter.value }, letter)),
    );
  }

  /**
   * The dead-letter form of a sample: its key and bytes (left out, with their size in a header, when they
   * would not fit either) and headers naming the topic it was for and why. Logged and counted.
   */
  private deadLetterSample(
    message: OutgoingMessage,
    failure: { code: string; reason: string; message: string },
  ): OutgoingMessage | undefined {
    const { deadLetterTopic, logger } = this.options;
    const bytes = messageBytes(message);
    const fields = { reason: failure.reason, detail: failure.message, key: message.key.slice(0, 200), bytes };
    if (deadLetterTopic === undefined) {
      logger.error(
        { ...fields, dropped: 1 },
        'sample cannot be sent and no dead-letter topic is set; dropped',
      );
      this.options.onDropped?.(1, 'too_large');
      return undefined;
    }
    logger.error({ ...fields, topic: deadLetterTopic }, 'sample cannot be sent as it is; dead-lettering it');
    this.options.onDeadLettered?.(1, failure.reason);
    return this.deadLetterForm(deadLetterTopic, message, failure);
  }

  private deadLetterForm(
    topic: string,
    message: OutgoingMessage,
    failure: { code: string; reason: string; message: string },
  ): OutgoingMessage {
    const fits = messageBytes(message) <= this.maxMessageBytes;
    const headers: IHeaders = {
      [DEAD_LETTER_HEADERS.sourceTopic]: this.options.serde.topic,
      [DEAD_LETTER_HEADERS.errorCode]: failure.code,
      [DEAD_LETTER_HEADERS.errorMessage]: failure.message.slice(0, 4000),
      [DEAD_LETTER_HEADERS.reason]: failure.reason,
      [DEAD_LETTER_HEADERS.service]: this.options.service ?? 'collector',
      ...(fits ? {} : { 'gpu-meter.value.bytes': String(message.value?.length ?? 0) }),
    };
    return {
      key: truncateString(message.key, this.maxStringLength),
      value: fits ? message.value : null,
      topic,
      headers,
    };
  }

  private async sendBatch(messages: OutgoingMessage[]): Promise<void> {
    if (!this.connected) await this.connect();
    await this.producer.send({
      topic: messages[0]?.topic ?? this.options.serde.topic,
      acks: -1,
      messages: messages.map((message) => ({
        key: message.key,
        value: message.value,
        ...(message.headers ? { headers: message.headers } : {}),
      })),
    });
  }

  /**
   * Gives the buffer `drainMs` to empty, then closes it (what is still unsent is counted as dropped and
   * logged) and disconnects, abandoning a send still retrying.
   */
  async close(drainMs = 5_000): Promise<void> {
    await this.sender.drain(drainMs);
    await this.sender.close(1_000);
    await this.producer.disconnect();
  }
}
