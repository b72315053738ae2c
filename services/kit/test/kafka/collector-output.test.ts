import { Writable } from 'node:stream';
import { KafkaJSNonRetriableError, KafkaJSProtocolError, type Kafka, type Message } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@gpu-meter/kit/runtime';
import {
  BufferedSender,
  DEAD_LETTER_HEADERS,
  messageBytes,
  SamplePublisher,
  type OutgoingMessage,
  type TopicSerde,
} from '@gpu-meter/kit/kafka';

const silent = createLogger('test', 'silent');
const MIB = 1024 * 1024;

/** What kafkajs throws when the broker answers MESSAGE_TOO_LARGE (bailed out of its retrier). */
function messageTooLarge(): Error {
  const protocol = new KafkaJSProtocolError({
    type: 'MESSAGE_TOO_LARGE',
    code: 10,
    retriable: false,
    message: 'The request included a message larger than the max message size the server will accept',
  } as unknown as Error);
  // kafkajs passes { cause } too; its typings declare only the first argument.
  return Object.assign(new KafkaJSNonRetriableError(protocol), { cause: protocol });
}

/** A broker with the default max.message.bytes: a batch over 1 MiB is refused, on every try. */
function broker(limit = MIB) {
  const delivered: OutgoingMessage[] = [];
  const state = { attempts: 0, tooLarge: 0 };
  const send = async (messages: OutgoingMessage[]) => {
    state.attempts += 1;
    await new Promise((resolve) => setTimeout(resolve, 1));
    const bytes = messages.reduce((sum, m) => sum + messageBytes(m as Message), 0);
    if (bytes > limit) {
      state.tooLarge += 1;
      throw messageTooLarge();
    }
    delivered.push(...messages);
  };
  return { delivered, state, send };
}

const sized = (name: string, bytes: number): OutgoingMessage => ({
  key: name,
  value: Buffer.alloc(bytes, 'a'),
});

/** Log lines as objects, for asserting what an operator would see. */
function capturedLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: createLogger('test', 'info', stream) };
}

describe('BufferedSender and the broker size limit (issue 13 point 4)', () => {
  it('sends a backlog of large samples in byte-bounded batches instead of retrying one oversized batch', async () => {
    const kafka = broker();
    let dropped = 0;
    const sender = new BufferedSender(kafka.send, {
      maxBuffered: 40,
      retryInitialMs: 5,
      retryMaxMs: 10,
      logger: silent,
      onDropped: (count) => (dropped += count),
    });
    // A tenant's 100 KB annotation in each of its 30 samples: 3 MB, far under the 500-sample batch count.
    sender.enqueue(Array.from({ length: 30 }, (_, i) => sized(`tenant-a-${i}`, 100_000)));
    // Other tenants' samples arriving behind them.
    for (let round = 0; round < 5; round += 1) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      sender.enqueue(Array.from({ length: 4 }, (_, i) => sized(`tenant-b-${round}-${i}`, 100)));
    }
    expect(await sender.drain(3_000)).toBe(true);
    expect(dropped).toBe(0);
    expect(kafka.state.tooLarge).toBe(0);
    expect(kafka.delivered.map((m) => m.key)).toEqual([
      ...Array.from({ length: 30 }, (_, i) => `tenant-a-${i}`),
      ...Array.from({ length: 20 }, (_, i) => `tenant-b-${Math.floor(i / 4)}-${i % 4}`),
    ]);
    await sender.close();
  });

  it('learns a broker limit below its own: a refused batch is split, not retried whole', async () => {
    const kafka = broker(150_000);
    const sender = new BufferedSender(kafka.send, { maxBuffered: 100, retryInitialMs: 5, logger: silent });
    sender.enqueue(Array.from({ length: 20 }, (_, i) => sized(`s${i}`, 40_000)));
    expect(await sender.drain(3_000)).toBe(true);
    expect(kafka.delivered.map((m) => m.key)).toEqual(Array.from({ length: 20 }, (_, i) => `s${i}`));
    // One refusal teaches the limit; later batches fit.
    expect(kafka.state.tooLarge).toBeLessThanOrEqual(3);
    await sender.close();
  });

  it('dead-letters a single message the broker refuses even alone, and sends the rest', async () => {
    const kafka = broker(200_000);
    const deadLettered: Array<{ key: string; reason: string }> = [];
    const sender = new BufferedSender(kafka.send, {
      maxBuffered: 100,
      retryInitialMs: 5,
      logger: silent,
      deadLetter: (message, reason) => {
        deadLettered.push({ key: message.key, reason });
        return { key: message.key, value: null, topic: 'dead-letters' };
      },
    });
    sender.enqueue([sized('before', 10), sized('huge', 300_000), sized('after', 10)]);
    expect(await sender.drain(3_000)).toBe(true);
    expect(deadLettered).toEqual([{ key: 'huge', reason: 'MESSAGE_TOO_LARGE' }]);
    expect(kafka.delivered.map((m) => [m.key, m.topic ?? 'samples'])).toEqual([
      ['before', 'samples'],
      ['huge', 'dead-letters'],
      ['after', 'samples'],
    ]);
    await sender.close();
  });

  it('never dead-letters during an outage: retriable errors keep the samples', async () => {
    let up = false;
    const delivered: string[] = [];
    const sender = new BufferedSender(
      async (messages) => {
        if (!up) throw Object.assign(new Error('Connection error: ECONNREFUSED'), { retriable: true });
        delivered.push(...messages.map((m) => m.key));
      },
      {
        maxBuffered: 100,
        retryInitialMs: 5,
        retryMaxMs: 10,
        logger: silent,
        deadLetter: () => {
          throw new Error('an outage must not dead-letter');
        },
      },
    );
    sender.enqueue([sized('a', 10)]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    up = true;
    expect(await sender.drain(2_000)).toBe(true);
    expect(delivered).toEqual(['a']);
    await sender.close();
  });
});

describe('BufferedSender at shutdown (issue 18 point 4)', () => {
  it('counts and logs the samples it could not deliver, also when the send in flight hangs', async () => {
    const { lines, logger } = capturedLogger();
    const dropped: Array<{ count: number; reason: string }> = [];
    // A missing output topic: kafkajs keeps the send pending while it waits for metadata.
    const sender = new BufferedSender(() => new Promise<void>(() => {}), {
      maxBuffered: 100,
      logger,
      onDropped: (count, reason) => dropped.push({ count, reason }),
    });
    sender.enqueue(Array.from({ length: 7 }, (_, i) => sized(`s${i}`, 10)));
    expect(await sender.drain(50)).toBe(false);
    const started = Date.now();
    expect(await sender.close(100)).toBe(7);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(dropped).toEqual([{ count: 7, reason: 'shutdown' }]);
    expect(lines.some((line) => line.level === 50 && line.dropped === 7)).toBe(true);
  });
});

/** A SamplePublisher over a fake producer and registry; `send` decides what the "broker" does. */
function publisherWith<T extends object>(options: {
  send?: (record: { topic: string; messages: Message[] }) => Promise<unknown>;
  register?: () => Promise<number>;
  deadLetterTopic?: string;
  maxStringLength?: number;
  logger?: ReturnType<typeof createLogger>;
}) {
  const sent: Array<{ topic: string; message: Message }> = [];
  const counts = {
    dropped: [] as Array<{ count: number; reason: string }>,
    deadLettered: [] as Array<{ count: number; reason: string }>,
    truncated: [] as string[],
  };
  const producer = {
    events: { CONNECT: 'producer.connect', DISCONNECT: 'producer.disconnect' },
    on: () => () => {},
    connect: async () => {},
    disconnect: async () => {},
    send:
      options.send ??
      (async (record: { topic: string; messages: Message[] }) => {
        for (const message of record.messages) sent.push({ topic: record.topic, message });
        return [];
      }),
  };
  const serde = {
    topic: 'samples',
    register: options.register ?? (async () => 1),
    encode: (sample: T) => Buffer.from(JSON.stringify(sample)),
  } as unknown as TopicSerde<T>;
  const publisher = new SamplePublisher<T>({
    kafka: { producer: () => producer } as unknown as Kafka,
    serde,
    key: (sample) => `c/${(sample as { podUid: string }).podUid}`,
    logger: options.logger ?? silent,
    maxBuffered: 1_000,
    ...(options.deadLetterTopic ? { deadLetterTopic: options.deadLetterTopic } : {}),
    ...(options.maxStringLength ? { maxStringLength: options.maxStringLength } : {}),
    onDropped: (count, reason) => counts.dropped.push({ count, reason }),
    onDeadLettered: (count, reason) => counts.deadLettered.push({ count, reason }),
    onTruncated: (field) => counts.truncated.push(field),
  });
  return { publisher, sent, counts };
}

const decoded = (message: Message) => JSON.parse(String(message.value)) as Record<string, unknown>;

describe('SamplePublisher: bounded samples (issue 13 point 4)', () => {
  const sample = (podUid: string, user: string) => ({
    id: `id-${podUid}`,
    clusterId: 'c',
    podUid,
    project: 'team-a',
    user,
  });

  it("caps a tenant-written string field, marks and counts it, and keeps identity and other tenants' samples", async () => {
    const { publisher, sent, counts } = publisherWith<ReturnType<typeof sample>>({
      deadLetterTopic: 'collector-dead-letters',
      maxStringLength: 256,
    });
    await publisher.start();
    const huge = 'x'.repeat(100_000);
    publisher.publish([sample('p1', huge), sample('p2', 'alice')]);
    await publisher.close(2_000);
    expect(sent.map((s) => s.topic)).toEqual(['samples', 'samples']);
    const [first, second] = sent.map((s) => decoded(s.message));
    expect(String(first!.user).length).toBeLessThanOrEqual(256);
    expect(String(first!.user)).toMatch(/^x+.*truncated/);
    expect(first!.podUid).toBe('p1');
    expect(first!.id).toBe('id-p1');
    expect(second!.user).toBe('alice');
    expect(counts.truncated).toEqual(['user']);
    expect(counts.dropped).toEqual([]);
  });

  it('dead-letters a sample whose identity field is oversized, with the reason in headers', async () => {
    const { publisher, sent, counts } = publisherWith<ReturnType<typeof sample>>({
      deadLetterTopic: 'collector-dead-letters',
      maxStringLength: 256,
    });
    await publisher.start();
    publisher.publish([sample('u'.repeat(5_000), 'bob'), sample('p2', 'alice')]);
    await publisher.close(2_000);
    expect(sent.map((s) => s.topic)).toEqual(['collector-dead-letters', 'samples']);
    const headers = sent[0]!.message.headers ?? {};
    expect(String(headers[DEAD_LETTER_HEADERS.errorCode])).toBe('GPUM_SAMPLE_IDENTITY_TOO_LONG');
    expect(String(headers[DEAD_LETTER_HEADERS.sourceTopic])).toBe('samples');
    expect(String(headers[DEAD_LETTER_HEADERS.errorMessage])).toMatch(/podUid/);
    expect(messageBytes(sent[0]!.message)).toBeLessThan(MIB);
    expect(counts.deadLettered).toEqual([{ count: 1, reason: 'identity_too_long' }]);
  });

  it('dead-letters (not retries) a sample the broker refuses as too large', async () => {
    const sent: Array<{ topic: string; keys: string[] }> = [];
    let refusals = 0;
    const { publisher, counts } = publisherWith<ReturnType<typeof sample>>({
      deadLetterTopic: 'collector-dead-letters',
      send: async (record) => {
        // A topic with a small max.message.bytes: anything over 1 KB on the sample topic is refused.
        if (record.topic === 'samples' && record.messages.some((m) => messageBytes(m) > 1_000)) {
          refusals += 1;
          throw messageTooLarge();
        }
        sent.push({ topic: record.topic, keys: record.messages.map((m) => String(m.key)) });
        return [];
      },
    });
    await publisher.start();
    publisher.publish([sample('p1', 'alice'), sample('p2', 'y'.repeat(2_000)), sample('p3', 'carol')]);
    await publisher.close(3_000);
    expect(sent.flatMap((s) => s.keys.map((key) => `${s.topic}:${key}`))).toEqual([
      'samples:c/p1',
      'collector-dead-letters:c/p2',
      'samples:c/p3',
    ]);
    expect(refusals).toBeLessThanOrEqual(3);
    expect(counts.deadLettered).toEqual([{ count: 1, reason: 'message_too_large' }]);
  });

  it('dead-letters an object that is no sample (a rejected pod) in order with the samples, as it is given', async () => {
    const { publisher, sent, counts } = publisherWith<ReturnType<typeof sample>>({
      deadLetterTopic: 'collector-dead-letters',
    });
    await publisher.start();
    publisher.publish([sample('p1', 'alice')]);
    const value = Buffer.from(JSON.stringify({ kind: 'pod', uid: 'p2' }));
    const letter = { key: 'c/p2', value, code: 'GPUM_POD_REJECTED', reason: 'model_error', message: 'bad' };
    expect(publisher.deadLetter([letter])).toBe(0);
    await publisher.close(2_000);
    expect(sent.map((s) => `${s.topic}:${String(s.message.key)}`)).toEqual([
      'samples:c/p1',
      'collector-dead-letters:c/p2',
    ]);
    const { headers, value: sentValue } = sent[1]!.message;
    expect(sentValue).toEqual(value);
    expect(String(headers?.[DEAD_LETTER_HEADERS.errorCode])).toBe('GPUM_POD_REJECTED');
    expect(String(headers?.[DEAD_LETTER_HEADERS.reason])).toBe('model_error');
    expect(String(headers?.[DEAD_LETTER_HEADERS.errorMessage])).toBe('bad');
    expect(String(headers?.[DEAD_LETTER_HEADERS.sourceTopic])).toBe('samples');
    // The caller counts and logs what it dead-letters: not a sample dead letter.
    expect(counts.deadLettered).toEqual([]);
  });

  it('at close counts and logs the samples a missing topic kept from delivery', async () => {
    const { lines, logger } = capturedLogger();
    const { publisher, counts } = publisherWith<ReturnType<typeof sample>>({
      logger,
      send: () => new Promise(() => {}),
    });
    await publisher.start();
    publisher.publish(Array.from({ length: 7 }, (_, i) => sample(`p${i}`, 'alice')));
    await publisher.close(100);
    expect(counts.dropped).toEqual([{ count: 7, reason: 'shutdown' }]);
    expect(lines.some((line) => line.level === 50 && line.dropped === 7)).toBe(true);
  });

  it('does not retry a registry answer that no retry can fix (409), and says which subject', async () => {
    const { publisher } = publisherWith<ReturnType<typeof sample>>({
      register: async () => {
        throw Object.assign(new Error('Schema being registered is incompatible'), { status: 409 });
      },
    });
    await expect(publisher.start()).rejects.toThrow(/samples-value.*incompatible/);
    await publisher.close(10);
  });
});
