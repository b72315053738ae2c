import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Admin, type KafkaMessage } from 'kafkajs';
import { inject, onTestFinished } from 'vitest';
import { createTopicsOnce, waitForLeaders } from '@gpu-meter/kit/kafka';
import './provided-context.js';

/** Endpoints resolved by the global setup (environment, .stack/env or testcontainers). */
export function stackEnv(): Record<string, string> {
  return inject('stackEnv');
}

/** Unique per test: integration tests share one broker and must never see each other's records. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export function testKafka(clientId = uniqueName('test')): Kafka {
  return new Kafka({
    clientId,
    brokers: stackEnv().KAFKA_BROKERS!.split(','),
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 2000 },
  });
}

/** An admin client disconnected when the test ends. */
export async function testAdmin(kafka: Kafka = testKafka()): Promise<Admin> {
  const admin = kafka.admin();
  await admin.connect();
  onTestFinished(() => admin.disconnect());
  return admin;
}

/**
 * Creates the topics and waits until every partition has a leader. Not kafkajs's createTopics wait: it
 * gives up on the UNKNOWN_TOPIC_OR_PARTITION a loaded KRaft broker answers right after the creation (tests
 * failed on it at set-up); the kit's waitForLeaders retries that answer, bounded (30 s, then it throws
 * with the broker's last answer), so a topic that really does not come up still fails the test.
 */
export async function createTopics(admin: Admin, topics: string[], partitions = 1): Promise<void> {
  await createTopicsOnce(
    admin,
    topics.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
  );
  await waitForLeaders(admin, topics);
}

export interface ReadRecord {
  topic: string;
  partition: number;
  message: KafkaMessage;
}

/**
 * Reads a topic from the beginning in a fresh group until `count` records arrived (or, with count
 * undefined, until no record came for `idleMs`), then stops. read_committed unless told otherwise.
 */
export async function readTopic(
  topic: string,
  options: {
    count?: number;
    timeoutMs?: number;
    idleMs?: number;
    readUncommitted?: boolean;
    kafka?: Kafka;
  } = {},
): Promise<ReadRecord[]> {
  const kafka = options.kafka ?? testKafka();
  const consumer = kafka.consumer({
    groupId: uniqueName('reader'),
    readUncommitted: options.readUncommitted ?? false,
    maxWaitTimeInMs: 200,
  });
  const records: ReadRecord[] = [];
  const timeoutMs = options.timeoutMs ?? 30_000;
  const idleMs = options.idleMs ?? 3_000;
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let lastRecordAt = Date.now();
    await consumer.run({
      eachMessage: async ({ topic: from, partition, message }) => {
        records.push({ topic: from, partition, message });
        lastRecordAt = Date.now();
      },
    });
    const startedAt = Date.now();
    for (;;) {
      if (options.count !== undefined && records.length >= options.count) break;
      if (
        options.count === undefined &&
        Date.now() - lastRecordAt > idleMs &&
        Date.now() - startedAt > idleMs
      )
        break;
      if (Date.now() - startedAt > timeoutMs) {
        if (options.count !== undefined) {
          throw new Error(
            `read ${records.length} of ${options.count} records from ${topic} in ${timeoutMs} ms`,
          );
        }
        break;
      }
      await sleep(50);
    }
  } finally {
    await consumer.disconnect();
  }
  return records;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `check` returns a value other than undefined/false, failing with `what` after the timeout. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`,
      );
    }
    await sleep(intervalMs);
  }
}
