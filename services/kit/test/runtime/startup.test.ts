import type { Admin } from 'kafkajs';
import { KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { ConfigError, isRetriable } from '@gpu-meter/kit/contracts';
import {
  buildOpsServer,
  createLogger,
  createMetricsRegistry,
  StartupError,
  StartupProgress,
} from '@gpu-meter/kit/runtime';
import { ensureTopics } from '@gpu-meter/kit/kafka';

const logger = createLogger('test', 'silent');
const FAST = { policy: { initialMs: 1, maxMs: 4 } };

/** What kafkajs throws when a broker answers error code 3 (retriable), e.g. for a topic just created. */
function unknownTopicOrPartition(): KafkaJSProtocolError {
  return new KafkaJSProtocolError({
    type: 'UNKNOWN_TOPIC_OR_PARTITION',
    code: 3,
    retriable: true,
    message: 'This server does not host this topic-partition',
  } as unknown as Error);
}

/**
 * An admin client whose broker behaves as a loaded KRaft broker did: a topic exists as soon as it is
 * created, but metadata requests answer UNKNOWN_TOPIC_OR_PARTITION `unknownFor` times, then leaderless
 * partitions `leaderlessFor` times. kafkajs's createTopics waits for leaders itself unless told not to, and
 * its wait bails on that error (it retries LEADER_NOT_AVAILABLE only).
 */
function racingAdmin(options: { unknownFor: number; leaderlessFor: number; existing?: string[] }) {
  const topics = new Set(options.existing ?? []);
  let unknown = options.unknownFor;
  let leaderless = options.leaderlessFor;
  const metadata = (names: string[]) => {
    if (names.some((name) => !topics.has(name)) || unknown-- > 0) throw unknownTopicOrPartition();
    const leader = leaderless-- > 0 ? -1 : 1;
    return { topics: names.map((name) => ({ name, partitions: [{ partitionId: 0, leader }] })) };
  };
  const admin = {
    listTopics: async () => [...topics],
    createTopics: async ({
      topics: created,
      waitForLeaders,
    }: {
      topics: Array<{ topic: string }>;
      waitForLeaders?: boolean;
    }) => {
      for (const { topic } of created) topics.add(topic);
      if (waitForLeaders !== false) metadata(created.map(({ topic }) => topic));
      return true;
    },
    fetchTopicMetadata: async ({ topics: names }: { topics: string[] }) => metadata(names),
  };
  return {
    admin: admin as unknown as Admin,
    /** True once metadata has shown every partition with a leader. */
    settled: () => unknown < 0 && leaderless < 0,
  };
}

const spec = (topic: string) => ({ topic, partitions: 1, replicationFactor: 1 });

describe('ensureTopics', () => {
  it('waits through UNKNOWN_TOPIC_OR_PARTITION answered right after the topic was created', async () => {
    const broker = racingAdmin({ unknownFor: 3, leaderlessFor: 2 });
    await expect(ensureTopics(broker.admin, [spec('dlq')])).resolves.toEqual(['dlq']);
    expect(broker.settled()).toBe(true);
  });

  it('waits for the leaders of a topic an earlier, failed try already created', async () => {
    const broker = racingAdmin({ unknownFor: 1, leaderlessFor: 2, existing: ['dlq'] });
    await expect(ensureTopics(broker.admin, [spec('dlq')])).resolves.toEqual([]);
    expect(broker.settled()).toBe(true);
  });
});

describe('start-up steps', () => {
  it('retry a retriable error, not ready and saying why meanwhile, then ready', async () => {
    const progress = new StartupProgress(logger, FAST);
    const app = buildOpsServer({
      logger,
      metrics: createMetricsRegistry('test'),
      readiness: { startup: progress.check },
    });
    const seen: Array<{ status: number; body: unknown }> = [];
    let attempts = 0;
    await progress.step('dead-letter topic dlq', async () => {
      const response = await app.inject('/readyz');
      seen.push({ status: response.statusCode, body: response.json() });
      if (++attempts <= 3) throw unknownTopicOrPartition();
      return 'created';
    });
    expect(attempts).toBe(4);
    expect(seen[0]).toEqual({
      status: 503,
      body: {
        status: 'not ready',
        checks: { startup: false },
        waitingFor: { startup: 'dead-letter topic dlq' },
      },
    });
    for (const [index, { status, body }] of seen.slice(1).entries()) {
      expect(status).toBe(503);
      expect(body).toMatchObject({
        waitingFor: {
          startup: `dead-letter topic dlq: This server does not host this topic-partition (attempt ${index + 1})`,
        },
      });
    }
    progress.finish();
    const ready = await app.inject('/readyz');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', checks: { startup: true } });
    await app.close();
  });

  it('stop at once on a non-retriable error, naming what they were doing', async () => {
    const progress = new StartupProgress(logger, FAST);
    let attempts = 0;
    const failing = progress.step('dead-letter topic dlq', async () => {
      attempts += 1;
      throw new KafkaJSNonRetriableError('Topic authorization failed');
    });
    await expect(failing).rejects.toBeInstanceOf(StartupError);
    await expect(failing).rejects.toThrow('dead-letter topic dlq: Topic authorization failed');
    expect(attempts).toBe(1);
  });

  it('pass a configuration error through unchanged: it names its variable', async () => {
    const progress = new StartupProgress(logger, FAST);
    const error = new ConfigError('BANDWIDTH_SAMPLES_TOPIC', 'has 3 partitions but the other has 6');
    await expect(progress.step('raw topics', () => Promise.reject(error))).rejects.toBe(error);
    expect(progress.done).toBe(false);
  });
});

describe('isRetriable', () => {
  it('classifies what start-up meets', () => {
    const connection = Object.assign(new Error('Connection error: ECONNREFUSED'), {
      name: 'KafkaJSConnectionError',
      retriable: true,
    });
    expect(isRetriable(unknownTopicOrPartition())).toBe(true);
    // kafkajs gave up retrying an outage: still an outage.
    expect(
      isRetriable(new KafkaJSNumberOfRetriesExceeded(connection, { retryCount: 8, retryTime: 10_000 })),
    ).toBe(true);
    expect(isRetriable(new KafkaJSNonRetriableError('Invalid topics array'))).toBe(false);
    expect(isRetriable(Object.assign(new Error('unavailable'), { status: 503 }))).toBe(true);
    expect(isRetriable(Object.assign(new Error('too many'), { status: 429 }))).toBe(true);
    expect(isRetriable(Object.assign(new Error('incompatible'), { status: 409 }))).toBe(false);
    expect(isRetriable(new TypeError('fetch failed', { cause: connection }))).toBe(true);
    expect(isRetriable(new TypeError('x is not a function'))).toBe(false);
    expect(isRetriable(new ReferenceError('y is not defined'))).toBe(false);
    expect(isRetriable(new ConfigError('KAFKA_BROKERS', 'is required'))).toBe(false);
    expect(isRetriable(new Error('socket hang up'))).toBe(true);
  });

  it('takes an aggregate (kafkajs topic creation errors) for retriable only when each error is', () => {
    const invalidName = Object.assign(
      new Error('The request attempted to perform an operation on an invalid topic'),
      {
        name: 'KafkaJSCreateTopicError',
        type: 'INVALID_TOPIC_EXCEPTION',
        retriable: false,
      },
    );
    const aggregate = (...errors: Error[]) =>
      Object.assign(new Error('Topic creation errors'), { name: 'KafkaJSAggregateError', errors });
    expect(isRetriable(aggregate(invalidName, unknownTopicOrPartition()))).toBe(false);
    expect(isRetriable(aggregate(unknownTopicOrPartition()))).toBe(true);
  });
});
