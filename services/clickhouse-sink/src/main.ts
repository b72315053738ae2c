import {
  BatchConsumer,
  ClickHouse,
  ConfigError,
  createKafka,
  createLogger,
  createMetricsRegistry,
  createSchemaRegistry,
  deadLetterMessage,
  ensureTopics,
  buildOpsServer,
  exitOnStartupError,
  Shutdown,
  startOpsServer,
  TopicSerde,
  type UsageEvent,
} from '@gpu-meter/kit';
import { Counter, Histogram } from 'prom-client';
import { loadConfig, SERVICE_NAME, type SinkConfig } from './config.js';
import { migrate } from './migrator.js';
import { MIGRATIONS } from './migrations.js';
import { toUsageRow, validateUsageEvent } from './row.js';
import { insertUsageRows } from './usage-writer.js';

let config: SinkConfig;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) exitOnStartupError(undefined, error);
  throw error;
}

const logger = createLogger(SERVICE_NAME, config.logLevel);
const shutdown = new Shutdown(logger);
shutdown.installSignalHandlers();

async function run(): Promise<void> {
  const metrics = createMetricsRegistry(SERVICE_NAME);
  const rowsWritten = new Counter({
    name: 'gpumeter_sink_rows_written_total',
    help: 'Rows inserted into ClickHouse.',
    registers: [metrics],
  });
  const deadLettered = new Counter({
    name: 'gpumeter_sink_dead_letters_total',
    help: 'Poison events dead-lettered.',
    registers: [metrics],
  });
  const retries = new Counter({
    name: 'gpumeter_sink_retries_total',
    help: 'Failed attempts, by stage.',
    labelNames: ['stage'],
    registers: [metrics],
  });
  const flushSeconds = new Histogram({
    name: 'gpumeter_sink_flush_seconds',
    help: 'Insert + commit time per batch.',
    registers: [metrics],
  });

  const clickhouse = new ClickHouse(config);
  shutdown.register('clickhouse', () => clickhouse.close());
  // Migrations need ClickHouse; wait for it rather than crash-looping while it starts.
  for (let attempt = 0; ; attempt++) {
    try {
      await migrate(clickhouse, MIGRATIONS, logger);
      break;
    } catch (error) {
      logger.warn({ err: (error as Error).message, attempt }, 'migrations failed; retrying');
      await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** attempt)));
    }
  }

  const kafka = createKafka(config, SERVICE_NAME, logger);
  const serde = new TopicSerde<UsageEvent>(
    createSchemaRegistry(config),
    config,
    config.usageEventsTopic,
    'usageEvent',
  );
  // The dead-letter topic must exist before the first poison record: a send to a missing topic would be
  // retried forever and stall the partition.
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [
    {
      topic: config.deadLetterTopic,
      partitions: 1,
      replicationFactor: config.topicReplicationFactor,
      retentionMs: 28 * 24 * 3600 * 1000,
    },
  ]);
  await admin.disconnect();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  shutdown.register('dead-letter producer', () => producer.disconnect());

  const consumer = new BatchConsumer<UsageEvent>({
    kafka,
    groupId: config.consumerGroup,
    topics: [config.usageEventsTopic],
    logger,
    maxRows: config.batchMaxRows,
    maxWaitMs: config.batchMaxWaitMs,
    backoff: { initialMs: config.retryInitialMs, maxMs: config.retryMaxMs },
    sessionTimeoutMs: config.sessionTimeoutMs,
    decode: async (source) => {
      const event = serde.decodeKnown(source.value) ?? (await serde.decode(source.value));
      validateUsageEvent(event);
      return event;
    },
    deadLetter: async (source, error) => {
      await producer.send({
        topic: config.deadLetterTopic,
        messages: [
          deadLetterMessage(source, { code: error.code, message: error.message, service: SERVICE_NAME }),
        ],
      });
      deadLettered.inc();
    },
    flush: async (items) => {
      const now = Date.now();
      await insertUsageRows(
        clickhouse,
        items.map((item) => toUsageRow(item.value, item.source, now)),
      );
    },
    onFlushed: (rows, ms) => {
      rowsWritten.inc(rows);
      flushSeconds.observe(ms / 1000);
      if (rows > 0) logger.info({ rows, ms }, 'batch written');
    },
    onRetry: (stage) => retries.inc({ stage }),
  });

  const ops = buildOpsServer({
    logger,
    metrics,
    readiness: { kafka: () => consumer.ready, clickhouse: () => clickhouse.ping() },
  });
  await startOpsServer(ops, config.opsPort, config.opsHost);
  shutdown.register('ops server', () => ops.close());

  await consumer.start(config.fromBeginning, (error) => {
    logger.fatal({ err: error }, 'consumer crashed');
    void shutdown.run().finally(() => process.exit(1));
  });
  shutdown.register('consumer', () => consumer.close());
  logger.info(
    { topic: config.usageEventsTopic, database: config.clickhouseDatabase, group: config.consumerGroup },
    'clickhouse-sink started',
  );
}

run().catch((error: unknown) => exitOnStartupError(logger, error));
