import {
  ConfigError,
  Shutdown,
  TopicSerde,
  buildOpsServer,
  createKafka,
  createLogger,
  createMetricsRegistry,
  createSchemaRegistry,
  exitOnStartupError,
  SamplePublisher,
  startOpsServer,
  type BandwidthSample,
} from '@gpu-meter/kit';
import { createKubeConfig } from '@gpu-meter/kit/kubernetes';
import { BandwidthCollector } from './collector.js';
import { SERVICE_NAME, loadConfig, type Config } from './config.js';
import { collectorMetrics } from './metrics.js';

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) exitOnStartupError(undefined, error);
  throw error;
}

const logger = createLogger(SERVICE_NAME, config.logLevel);
try {
  const shutdown = new Shutdown(logger);
  shutdown.installSignalHandlers();
  const registry = createMetricsRegistry(SERVICE_NAME);
  let bufferSize = () => 0;
  const metrics = collectorMetrics(registry, () => bufferSize());
  const serde = new TopicSerde<BandwidthSample>(
    createSchemaRegistry(config),
    config,
    config.topic,
    'bandwidthSample',
  );
  const publisher = new SamplePublisher<BandwidthSample>({
    kafka: createKafka(config, SERVICE_NAME, logger),
    serde,
    logger,
    maxBuffered: config.maxBufferedSamples,
    onSent: (count) => metrics.samplesPublished.inc(count),
    onDropped: (count) => metrics.samplesDropped.inc(count),
    onSendError: () => metrics.sendErrors.inc(),
  });
  bufferSize = () => publisher.buffered;
  const collector = new BandwidthCollector(config, createKubeConfig(config), publisher, metrics, logger);

  const ops = buildOpsServer({
    logger,
    metrics: registry,
    readiness: { kubernetes: () => collector.ready, kafka: () => publisher.ready },
  });
  await startOpsServer(ops, config.opsPort, config.opsHost);
  shutdown.register('ops server', () => ops.close());
  shutdown.register('publisher', () => publisher.close());

  await publisher.start();
  await collector.start();
  shutdown.register('collector', () => collector.stop());
  logger.info(
    { topic: config.topic, samplingIntervalMs: config.samplingIntervalMs, clusterId: config.clusterId },
    'collector ready',
  );
} catch (error) {
  exitOnStartupError(logger, error);
}
