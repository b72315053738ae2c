import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type Admin, type ITopicConfig, type KafkaConfig, type SASLOptions } from 'kafkajs';
import type { ConfigOf } from '../config/env.js';
import type { kafkaConfigSpec } from './config.js';
import { ConfigError, errorMessage } from '../contracts/errors.js';
import { backoffCeiling, sleepUnlessAborted, type BackoffPolicy } from '../runtime/backoff.js';
import type { Logger } from '../runtime/logger.js';
import type { TopicSpec } from '../contracts/topics.js';

export type KafkaSettings = ConfigOf<typeof kafkaConfigSpec>;

/** kafkajs log lines go through the service's pino logger, at matching levels. */
function pinoLogCreator(logger: Logger) {
  return () =>
    ({ level, log }: { level: logLevel; log: { message: string; [key: string]: unknown } }) => {
      const { message, ...extra } = log;
      const child = { kafkajs: extra };
      if (level === logLevel.ERROR) logger.error(child, message);
      else if (level === logLevel.WARN) logger.warn(child, message);
      else if (level === logLevel.INFO) logger.debug(child, message);
      else logger.trace(child, message);
    };
}

function saslOptions(settings: KafkaSettings): SASLOptions | undefined {
  if (settings.kafkaSaslMechanism === 'none') return undefined;
  if (!settings.kafkaTls && !settings.kafkaAllowPlaintextSasl)
    throw new ConfigError(
      'KAFKA_TLS',
      `must be true with KAFKA_SASL_MECHANISM=${settings.kafkaSaslMechanism}: without TLS the SASL ` +
        'credentials cross the network unencrypted (set KAFKA_ALLOW_PLAINTEXT_SASL=true to accept that)',
    );
  if (!settings.kafkaSaslUsername)
    throw new ConfigError('KAFKA_SASL_USERNAME', `is required for ${settings.kafkaSaslMechanism}`);
  if (!settings.kafkaSaslPassword)
    throw new ConfigError('KAFKA_SASL_PASSWORD', `is required for ${settings.kafkaSaslMechanism}`);
  return {
    mechanism: settings.kafkaSaslMechanism,
    username: settings.kafkaSaslUsername,
    password: settings.kafkaSaslPassword,
  } as SASLOptions;
}

/** TLS options: server CAs and, for mutual TLS, a client certificate and key (both or neither). */
function tlsOptions(settings: KafkaSettings): KafkaConfig['ssl'] {
  const { kafkaTlsCertFile: cert, kafkaTlsKeyFile: key } = settings;
  if (!settings.kafkaTls) {
    if (cert || key)
      throw new ConfigError('KAFKA_TLS', 'must be true when a client certificate is configured');
    return undefined;
  }
  if (Boolean(cert) !== Boolean(key))
    throw new ConfigError(cert ? 'KAFKA_TLS_KEY_FILE' : 'KAFKA_TLS_CERT_FILE', 'mutual TLS needs both files');
  const ca = settings.kafkaTlsCaFile ? { ca: [readFileSync(settings.kafkaTlsCaFile, 'utf8')] } : {};
  const client = cert && key ? { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') } : {};
  return Object.keys(ca).length + Object.keys(client).length > 0 ? { ...ca, ...client } : true;
}

/** Builds the kafkajs client options; no I/O happens until a producer, consumer or admin connects. */
export function kafkaClientConfig(settings: KafkaSettings, serviceName: string, logger: Logger): KafkaConfig {
  const sasl = saslOptions(settings);
  const tls = tlsOptions(settings);
  return {
    clientId: settings.kafkaClientId ?? serviceName,
    brokers: [...settings.kafkaBrokers],
    ...(sasl ? { sasl } : {}),
    ...(tls ? { ssl: tls } : {}),
    logLevel: logLevel.INFO,
    logCreator: pinoLogCreator(logger.child({ component: 'kafkajs' })),
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 10_000 },
  };
}

export function createKafka(settings: KafkaSettings, serviceName: string, logger: Logger): Kafka {
  return new Kafka(kafkaClientConfig(settings, serviceName, logger));
}

function toTopicConfig(spec: TopicSpec): ITopicConfig {
  const configEntries = [{ name: 'cleanup.policy', value: spec.compacted ? 'compact' : 'delete' }];
  if (spec.retentionMs !== undefined)
    configEntries.push({ name: 'retention.ms', value: String(spec.retentionMs) });
  if (spec.logAppendTime) configEntries.push({ name: 'message.timestamp.type', value: 'LogAppendTime' });
  return {
    topic: spec.topic,
    numPartitions: spec.partitions,
    replicationFactor: spec.replicationFactor,
    configEntries,
  };
}

/**
 * Creates the topics that do not exist yet, with their settings, and leaves existing ones alone: running
 * it from every replica at every start is harmless. Resolves once every partition of every spec'd topic
 * has a leader (also those that existed: a retried start-up may find the topic its failed try created, still
 * leaderless). Returns the topics it created.
 */
export async function ensureTopics(admin: Admin, specs: readonly TopicSpec[]): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((spec) => !existing.has(spec.topic));
  if (missing.length > 0) await createTopicsOnce(admin, missing.map(toTopicConfig));
  await waitForLeaders(
    admin,
    specs.map((spec) => spec.topic),
  );
  return missing.map((spec) => spec.topic);
}

/**
 * admin.createTopics without kafkajs's own wait for leaders, which gives up (bails, though the error is
 * retriable) on the UNKNOWN_TOPIC_OR_PARTITION a KRaft broker answers while the new topic's metadata is
 * not applied yet: seen 3 times in 60 creations beside two CPU hogs, and it stopped sinks at start-up.
 * Callers wait with `waitForLeaders` instead. A topic another replica (or an earlier try) created between
 * the list and the create is the idempotent outcome, not an error.
 */
export async function createTopicsOnce(admin: Admin, topics: ITopicConfig[]): Promise<void> {
  try {
    await admin.createTopics({ topics, waitForLeaders: false });
  } catch (error) {
    if (!(error instanceof Error && /already exists/i.test(error.message))) throw error;
  }
}

/**
 * Waits until every partition of `topics` has a leader. kafkajs's own `waitForLeaders` retries only
 * LEADER_NOT_AVAILABLE, but a KRaft broker may first answer UNKNOWN_TOPIC_OR_PARTITION for a topic it has
 * just created (its metadata not yet applied), which kafkajs then throws; both mean "not yet" here.
 */
export async function waitForLeaders(
  admin: Admin,
  topics: readonly string[],
  timeoutMs = 30_000,
): Promise<void> {
  if (topics.length === 0) return;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let error: unknown;
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics: [...topics] });
      if (found.length === topics.length && found.every((t) => t.partitions.every((p) => p.leader >= 0)))
        return;
    } catch (caught) {
      const type = (caught as { type?: string }).type;
      if (type !== 'UNKNOWN_TOPIC_OR_PARTITION' && type !== 'LEADER_NOT_AVAILABLE') throw caught;
      error = caught;
    }
    if (Date.now() > deadline)
      throw new Error(
        `topics ${topics.join(', ')} have no leader after ${timeoutMs} ms: ${errorMessage(error)}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Number of partitions of each topic, for co-partitioning checks. */
export async function partitionCounts(admin: Admin, topics: readonly string[]): Promise<Map<string, number>> {
  const metadata = await admin.fetchTopicMetadata({ topics: [...topics] });
  return new Map(metadata.topics.map((topic) => [topic.name, topic.partitions.length]));
}

const CONCURRENT_TRANSACTIONS_BACKOFF: BackoffPolicy = { initialMs: 10, maxMs: 200 };

/**
 * Right after a transaction ends the coordinator is still writing its markers and answers the next
 * transaction's AddOffsetsToTxn with CONCURRENT_TRANSACTIONS, which kafkajs does not retry there (the Java
 * client does): `work` (a `sendOffsets`) is tried again after 10, 20, 40 ... ms, at most 200 ms apart.
 */
export async function retryConcurrentTransactions<T>(work: () => Promise<T>, attempts = 20): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if ((error as { type?: string }).type !== 'CONCURRENT_TRANSACTIONS' || attempt >= attempts) throw error;
      await sleepUnlessAborted(backoffCeiling(attempt - 1, CONCURRENT_TRANSACTIONS_BACKOFF));
    }
  }
}
