import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import type { ConfigOf } from '../config/env.js';
import { errorMessage } from '../contracts/errors.js';
import { createKafka, ensureTopics } from '../kafka/client.js';
import { createKubeConfig } from '../kubernetes/informers.js';
import { createLogger, type Logger } from '../runtime/logger.js';
import { buildOpsServer, startOpsServer } from '../runtime/ops-server.js';
import { createMetricsRegistry } from '../runtime/metrics.js';
import { SamplePublisher } from '../kafka/sample-publisher.js';
import { createSchemaRegistry, TopicSerde, valueSubject } from '../kafka/serde.js';
import { deadLetterTopicSpec } from '../contracts/topics.js';
import type { SchemaName } from '../contracts/schemas.js';
import { exitOnStartupError, loadConfigOrExit, Shutdown } from '../runtime/shutdown.js';
import { retryWhileRetriable, StartupProgress } from '../runtime/startup.js';
import type { collectorBufferConfigSpec, collectorConfigSpec } from './collector-config.js';

export { collectorBufferConfigSpec, collectorConfigSpec } from './collector-config.js';
export { sharedCollectorMetrics } from './collector-metrics.js';

/** What every collector's configuration has: the shared collector specs and its output topic. */
export type CollectorSettings = ConfigOf<ReturnType<typeof collectorConfigSpec>> &
  ConfigOf<typeof collectorBufferConfigSpec> & { readonly topic: string };

/** The counters a collector's publisher feeds. */
export interface PublisherMetrics {
  readonly samplesPublished: { inc(count: number): void };
  /** By reason: buffer_full, shutdown, too_large (refused even alone and no dead-letter form). */
  readonly samplesDropped: { inc(labels: { reason: string }, count: number): void };
  /** By reason: identity_too_long, message_too_large. */
  readonly samplesDeadLettered: { inc(labels: { reason: string }, count: number): void };
  readonly sampleFieldsTruncated: { inc(labels: { field: string }, count: number): void };
  readonly sendErrors: { inc(): void };
}

export interface Collector {
  readonly ready: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface CollectorWiring<C extends CollectorSettings, S, M> {
  readonly service: string;
  readonly loadConfig: () => C;
  readonly schema: SchemaName;
  /** The Kafka key of a sample (podSampleKey, bandwidthSampleKey): what decides its partition. */
  readonly key: (sample: S) => string;
  readonly metrics: (registry: Registry, bufferSize: () => number) => M & PublisherMetrics;
  readonly collector: (
    config: C,
    kubeConfig: KubeConfig,
    publisher: SamplePublisher<S>,
    metrics: M & PublisherMetrics,
    logger: Logger,
  ) => Collector;
}

/**
 * A collector's `main`: configuration (failing fast, naming the variable), logger, metrics, the sample
 * publisher on the collector's topic, the ops server (ready when the collector has synced and Kafka is
 * connected), then the collector itself; SIGTERM closes them in reverse order.
 */
export async function runCollector<C extends CollectorSettings, S, M>(
  wiring: CollectorWiring<C, S, M>,
): Promise<void> {
  const config = loadConfigOrExit(wiring.loadConfig);
  const logger = createLogger(wiring.service, config.logLevel);
  try {
    const shutdown = new Shutdown(logger);
    shutdown.installSignalHandlers();
    const registry = createMetricsRegistry(wiring.service);
    let bufferSize = () => 0;
    const metrics = wiring.metrics(registry, () => bufferSize());
    const kafka = createKafka(config, wiring.service, logger);
    const publisher = new SamplePublisher<S>({
      kafka,
      serde: new TopicSerde<S>(createSchemaRegistry(config), config, config.topic, wiring.schema),
      key: wiring.key,
      logger,
      maxBuffered: config.maxBufferedSamples,
      deadLetterTopic: config.deadLetterTopic,
      service: wiring.service,
      maxStringLength: config.maxSampleStringLength,
      onSent: (count) => metrics.samplesPublished.inc(count),
      onDropped: (count, reason) => metrics.samplesDropped.inc({ reason }, count),
      onDeadLettered: (count, reason) => metrics.samplesDeadLettered.inc({ reason }, count),
      onTruncated: (field) => metrics.sampleFieldsTruncated.inc({ field }, 1),
      onSendError: () => metrics.sendErrors.inc(),
    });
    bufferSize = () => publisher.buffered;
    const collector = wiring.collector(config, createKubeConfig(config), publisher, metrics, logger);

    const startup = new StartupProgress(logger);
    const ops = buildOpsServer({
      logger,
      metrics: registry,
      readiness: {
        startup: startup.check,
        kubernetes: () => collector.ready,
        kafka: () => publisher.ready,
      },
    });
    await startOpsServer(ops, config.opsPort, config.opsHost);
    shutdown.register('ops server', () => ops.close());
    shutdown.register('publisher', () => publisher.close());
    const stopTopicRetries = new AbortController();
    shutdown.register('dead-letter topic', () => stopTopicRetries.abort());
    ensureDeadLetterTopic(kafka, config, logger, stopTopicRetries.signal);

    // Both retry by themselves (the registration with the kit's back-off, the watches by restarting their
    // informers), so neither step is run twice here; the steps name what /readyz waits for meanwhile.
    const once = () => false;
    await startup.step(
      `schema registry subject ${valueSubject(config.topic)}`,
      () => publisher.start(),
      once,
    );
    await startup.step('Kubernetes pods and nodes listed', () => collector.start(), once);
    startup.finish();
    shutdown.register('collector', () => collector.stop());
    logger.info(
      { topic: config.topic, samplingIntervalMs: config.samplingIntervalMs, clusterId: config.clusterId },
      'collector ready',
    );
  } catch (error) {
    exitOnStartupError(logger, error);
  }
}

/**
 * Creates the dead-letter topic in the background: sampling must not wait for Kafka (samples buffer
 * through an outage), and a dead letter waits in the send buffer until its topic exists.
 */
function ensureDeadLetterTopic(
  kafka: ReturnType<typeof createKafka>,
  config: CollectorSettings,
  logger: Logger,
  signal: AbortSignal,
): void {
  const admin = kafka.admin();
  void retryWhileRetriable(
    `dead-letter topic ${config.deadLetterTopic}`,
    async () => {
      await admin.connect();
      await ensureTopics(admin, [deadLetterTopicSpec(config.deadLetterTopic, config.topicReplicationFactor)]);
    },
    { logger, signal },
  )
    .catch((error: unknown) => {
      if (signal.aborted) return;
      logger.error(
        { err: errorMessage(error), topic: config.deadLetterTopic },
        'collector dead-letter topic not created: dead letters wait in the send buffer until it exists',
      );
    })
    .finally(() => admin.disconnect().catch(() => {}));
}
