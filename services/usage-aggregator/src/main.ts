import {
  buildOpsServer,
  createKafka,
  createLogger,
  createMetricsRegistry,
  createSchemaRegistry,
  errorMessage,
  exitOnStartupError,
  Shutdown,
  startOpsServer,
  TopicSerde,
  type BandwidthSample,
  type Logger,
  type PodAllocationSample,
  type UsageEvent,
} from '@gpu-meter/kit';
import { driverSettings, loadConfig } from './config.js';
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

    const kafka = createKafka(config, SERVICE, log);
    const admin = kafka.admin();
    await admin.connect();
    shutdown.register('admin', () => admin.disconnect());
    const partitions = await prepareTopics(admin, config, log);

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
    for (const serde of [...serdes, usageSerde]) await serde.registerRetrying(log);

    const driver = new RemoteDriver(
      {
        settings: driverSettings(config),
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
    const service = new AggregatorService(config, kafka, admin, driver, usageSerde, log, metrics, (error) => {
      // Every instance that takes this task would refuse the same way: stop loudly, naming it.
      log.fatal({ err: errorMessage(error) }, 'task cannot be restored; exiting');
      process.exit(1);
    });
    const ops = buildOpsServer({ logger: log, metrics: registry, readiness: { kafka: () => service.ready } });
    const address = await startOpsServer(ops, config.opsPort, config.opsHost);
    shutdown.register('ops server', () => ops.close());
    await service.start();
    shutdown.register('aggregator', () => service.stop());
    log.info({ partitions, ops: address, group: config.consumerGroupId }, 'aggregator started');
  } catch (error) {
    exitOnStartupError(logger, error);
  }
}

void main();
