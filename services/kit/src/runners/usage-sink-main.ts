import type { Message } from 'kafkajs';
import type { Registry } from 'prom-client';
import type { BatchItem } from '../kafka/batch-accumulator.js';
import { BatchConsumer } from '../kafka/batch-consumer.js';
import type { ConfigOf } from '../config/env.js';
import type { registryConfigSpec } from '../kafka/config.js';
import type { opsConfigSpec } from '../runtime/config.js';
import type { usageEventsConsumerConfigSpec, usageSinkRetryConfigSpec } from './usage-sink-config.js';
import { deadLetterMessage } from '../kafka/dead-letter.js';
import { createKafka, ensureTopics, type KafkaSettings } from '../kafka/client.js';
import { createLogger, type Logger } from '../runtime/logger.js';
import { buildOpsServer, startOpsServer, type ReadinessCheck } from '../runtime/ops-server.js';
import { createMetricsRegistry } from '../runtime/metrics.js';
import type { UsageEvent } from '../contracts/schemas.js';
import { sendInChunks } from '../kafka/send-chunks.js';
import { createSchemaRegistry, TopicSerde } from '../kafka/serde.js';
import { deadLetterTopicSpec } from '../contracts/topics.js';
import { exitOnStartupError, loadConfigOrExit, Shutdown } from '../runtime/shutdown.js';
import { StartupProgress } from '../runtime/startup.js';

export { usageEventsConsumerConfigSpec, usageSinkRetryConfigSpec } from './usage-sink-config.js';

/** What every usage-events sink's configuration has (the shared consumer spec, Kafka, registry, ops). */
export type UsageSinkSettings = KafkaSettings &
  ConfigOf<typeof registryConfigSpec> &
  ConfigOf<typeof opsConfigSpec> &
  ConfigOf<ReturnType<typeof usageEventsConsumerConfigSpec>> &
  ConfigOf<ReturnType<typeof usageSinkRetryConfigSpec>> & {
    readonly batchMaxWaitMs: number;
  };

/** What a sink sets up for itself, given its configuration, logger, shutdown and metrics registry. */
export interface UsageSinkContext<C> {
  readonly config: C;
  readonly logger: Logger;
  readonly shutdown: Shutdown;
  readonly metrics: Registry;
  /** Writes dead letters to the sink's dead-letter topic (e.g. events the destination rejected). */
  readonly sendDeadLetters: (messages: Message[]) => Promise<void>;
  /** Start-up steps the sink's own set-up needs (e.g. migrations) go through `startup.step`. */
  readonly startup: StartupProgress;
}

/** The parts that make one sink differ from another. */
export interface UsageSink<T> {
  readonly maxBatch: number;
  /** Event → what `flush` writes; throws PoisonRecordError for an event that can never be written. */
  map(event: UsageEvent): T;
  /** Writes a batch; throws to have the whole batch retried. Must be idempotent. */
  flush(items: ReadonlyArray<BatchItem<T>>): Promise<void>;
  onFlushed?(items: number, ms: number): void;
  onRetry?(stage: 'decode' | 'dead-letter' | 'flush', error: unknown): void;
  /** An undecodable or unmappable event went to the dead-letter topic. */
  onDeadLettered?(): void;
  readonly readiness?: Record<string, ReadinessCheck>;
  /** Extra fields of the "started" log line (where the sink writes). */
  readonly describe?: Record<string, unknown>;
}

/**
 * A usage-events sink's `main`: configuration (failing fast, naming the variable), logger, signals, the
 * ops server, the dead-letter topic (created before the first poison record: a send to a missing topic
 * would be retried forever and stall the partition) and its producer, the sink's own set-up, and the batch
 * consumer (at least once into an idempotent sink); SIGTERM closes them in reverse order. Each start-up
 * step retries retriable errors (not ready meanwhile, /readyz naming the step); a non-retriable one exits
 * non-zero naming what failed.
 */
export function runUsageEventsSink<C extends UsageSinkSettings, T>(options: {
  readonly service: string;
  readonly loadConfig: () => C;
  readonly setup: (context: UsageSinkContext<C>) => Promise<UsageSink<T>>;
}): void {
  const { service } = options;
  const config = loadConfigOrExit(options.loadConfig);
  const logger = createLogger(service, config.logLevel);
  const shutdown = new Shutdown(logger);
  shutdown.installSignalHandlers();

  async function run(): Promise<void> {
    const metrics = createMetricsRegistry(service);
    // The ops server comes first: while a dependency is still starting, /readyz says what we wait for.
    const startup = new StartupProgress(logger);
    // Filled in as the parts exist: the consumer's and the sink's own checks.
    const readiness: Record<string, ReadinessCheck> = { startup: startup.check, kafka: () => false };
    const ops = buildOpsServer({ logger, metrics, readiness });
    await startOpsServer(ops, config.opsPort, config.opsHost);
    shutdown.register('ops server', () => ops.close());

    const kafka = createKafka(config, service, logger);
    const admin = kafka.admin();
    await startup.step(`dead-letter topic ${config.deadLetterTopic}`, async () => {
      await admin.connect();
      await ensureTopics(admin, [deadLetterTopicSpec(config.deadLetterTopic, config.topicReplicationFactor)]);
    });
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    shutdown.register('dead-letter producer', () => producer.disconnect());
    await startup.step('Kafka producer (dead letters)', () => producer.connect());
    const sendDeadLetters = async (messages: Message[]) => {
      await sendInChunks((record) => producer.send(record), config.deadLetterTopic, messages);
    };

    const sink = await options.setup({ config, logger, shutdown, metrics, sendDeadLetters, startup });
    Object.assign(readiness, sink.readiness);
    const serde = new TopicSerde<UsageEvent>(
      createSchemaRegistry(config),
      config,
      config.usageEventsTopic,
      'usageEvent',
    );
    const consumer = new BatchConsumer<T>({
      kafka,
      groupId: config.consumerGroup,
      topics: [config.usageEventsTopic],
      logger,
      maxRows: sink.maxBatch,
      maxWaitMs: config.batchMaxWaitMs,
      backoff: { initialMs: config.retryInitialMs, maxMs: config.retryMaxMs },
      sessionTimeoutMs: config.sessionTimeoutMs,
      decode: async (source) =>
        sink.map(serde.decodeKnown(source.value) ?? (await serde.decode(source.value))),
      deadLetter: async (source, error) => {
        await sendDeadLetters([
          deadLetterMessage(source, { code: error.code, message: error.message, service }),
        ]);
        sink.onDeadLettered?.();
      },
      flush: (items) => sink.flush(items),
      ...(sink.onFlushed ? { onFlushed: sink.onFlushed } : {}),
      ...(sink.onRetry ? { onRetry: sink.onRetry } : {}),
    });
    readiness.kafka = () => consumer.ready;

    shutdown.register('consumer', () => consumer.close());
    const what = `consumer of ${config.usageEventsTopic} (group ${config.consumerGroup})`;
    await startup.step(what, () =>
      consumer.start(config.fromBeginning, (error) => {
        // kafkajs restarts the consumer itself after a retriable crash; this one it will not.
        logger.fatal({ err: error }, `${what} crashed and kafkajs will not restart it: exiting`);
        void shutdown.run().finally(() => process.exit(1));
      }),
    );
    startup.finish();
    logger.info(
      { topic: config.usageEventsTopic, group: config.consumerGroup, ...sink.describe },
      `${service} started`,
    );
  }

  run().catch((error: unknown) => exitOnStartupError(logger, error));
}
