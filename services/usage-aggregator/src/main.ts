import {
  errorMessage,
  type BandwidthSample,
  type PodAllocationSample,
  type UsageEvent,
} from '@gpu-meter/kit/contracts';
import {
  buildOpsServer,
  createLogger,
  createMetricsRegistry,
  exitOnStartupError,
  Shutdown,
  startOpsServer,
  StartupProgress,
  type Logger,
  type ReadinessCheck,
} from '@gpu-meter/kit/runtime';
import { createKafka, createSchemaRegistry, TopicSerde } from '@gpu-meter/kit/kafka';
import { driverSettings, loadConfig, type RunningConfig } from './config.js';
import { createAggregatorMetrics } from './metrics.js';
import { RemoteDriver } from './remote-driver.js';
import { AggregatorService } from './service.js';
import { prepareTopics } from './startup.js';

const SERVICE = 'usage-aggregator';

async function main(): Promise<void> {
  let logger: Logger | undefined;
  try {
    const config = loadConfig();
    logger = createLogger(SERVICE, config.logLevel);
    const log = logger;
    // Before any I/O: a start-up that stalls later still shows it began.
    log.info({ group: config.consumerGroupId }, 'aggregator starting');
    const shutdown = new Shutdown(log);
    shutdown.installSignalHandlers();
    const registry = createMetricsRegistry(SERVICE);
    const metrics = createAggregatorMetrics(registry);

    // The ops server comes first: while a dependency is still starting, /readyz says what we wait for.
    const startup = new StartupProgress(log);
    const readiness: Record<string, ReadinessCheck> = { startup: startup.check, kafka: () => false };
    const ops = buildOpsServer({ logger: log, metrics: registry, readiness });
    const address = await startOpsServer(ops, config.opsPort, config.opsHost);
    shutdown.register('ops server', () => ops.close());

    const kafka = createKafka(config, SERVICE, log);
    const admin = kafka.admin();
    shutdown.register('admin', () => admin.disconnect());
    // Retriable failures are retried (not ready meanwhile); raw topics that are not co-partitioned are a
    // ConfigError naming the variable, and stop the start-up.
    const tasks = await startup.step(
      `topics ${config.podAllocationsTopic}, ${config.bandwidthSamplesTopic}, ${config.usageEventsTopic}`,
      async () => {
        await admin.connect();
        return prepareTopics(admin, config, log);
      },
    );

    const running: RunningConfig = Object.freeze({ ...config, tasks });

    const schemaRegistry = createSchemaRegistry(config);
    const serdes = [
      new TopicSerde<PodAllocationSample>(
        schemaRegistry,
        config,
        config.podAllocationsTopic,
        'podAllocationSample',
      ),
      new TopicSerde<BandwidthSample>(
        schemaRegistry,
        config,
        config.bandwidthSamplesTopic,
        'bandwidthSample',
      ),
    ];
    const usageSerde = new TopicSerde<UsageEvent>(
      schemaRegistry,
      config,
      config.usageEventsTopic,
      'usageEvent',
    );
    // Retried: a registry that is down or stalls must not stop (or silently hang) the start-up for good.
    for (const serde of [...serdes, usageSerde])
      await startup.step(`schema registry subject ${serde.subject}`, () => serde.register());

    const driver = new RemoteDriver(
      {
        settings: driverSettings(running),
        registry: {
          schemaRegistryUrl: config.schemaRegistryUrl,
          schemaRegistryUsername: config.schemaRegistryUsername,
          schemaRegistryPassword: config.schemaRegistryPassword,
        },
      },
      (error) => {
        // The tasks' state died with the worker; a restart restores it from the committed offsets.
        log.fatal({ err: errorMessage(error) }, 'driver worker failed; exiting');
        process.exit(1);
      },
    );
    shutdown.register('driver worker', () => driver.close());
    const aggregator = new AggregatorService(
      running,
      kafka,
      admin,
      driver,
      usageSerde,
      log,
      metrics,
      (error) => {
        // Every instance that takes this task would refuse the same way: stop loudly, naming it.
        log.fatal({ err: errorMessage(error) }, 'task cannot be restored; exiting');
        process.exit(1);
      },
    );
    readiness.kafka = () => aggregator.readiness();
    await startup.step(`consumer of the raw topics (group ${config.consumerGroupId})`, () =>
      aggregator.start((error) => {
        // Its tasks resume elsewhere, or here after a restart, from the committed offsets.
        log.fatal({ err: errorMessage(error) }, 'consumer crashed and kafkajs will not restart it; exiting');
        void shutdown.run().finally(() => process.exit(1));
      }),
    );
    shutdown.register('aggregator', () => aggregator.stop());
    startup.finish();
    log.info({ tasks, ops: address, group: config.consumerGroupId }, 'aggregator started');
  } catch (error) {
    exitOnStartupError(logger, error);
  }
}

void main();
