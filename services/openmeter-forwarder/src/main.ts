import {
  BatchConsumer,
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
import { Counter } from 'prom-client';
import { deliverBisecting } from './bisect.js';
import { toCloudEvent, type CloudEvent } from './cloudevent.js';
import { loadConfig, SERVICE_NAME, type ForwarderConfig } from './config.js';
import { OpenMeterClient } from './openmeter-client.js';
import { DeliveryRetryError, RESPONSE_BODY_HEADER } from './outcome.js';

let config: ForwarderConfig;
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
  const delivered = new Counter({
    name: 'gpumeter_forwarder_events_delivered_total',
    help: 'Events OpenMeter accepted.',
    registers: [metrics],
  });
  const deadLettered = new Counter({
    name: 'gpumeter_forwarder_dead_letters_total',
    help: 'Events dead-lettered, by reason.',
    labelNames: ['reason'],
    registers: [metrics],
  });
  const retries = new Counter({
    name: 'gpumeter_forwarder_retries_total',
    help: 'Failed attempts, by stage.',
    labelNames: ['stage'],
    registers: [metrics],
  });
  const requests = new Counter({
    name: 'gpumeter_forwarder_requests_total',
    help: 'POSTs to OpenMeter, by outcome.',
    labelNames: ['outcome'],
    registers: [metrics],
  });

  const kafka = createKafka(config, SERVICE_NAME, logger);
  const serde = new TopicSerde<UsageEvent>(
    createSchemaRegistry(config),
    config,
    config.usageEventsTopic,
    'usageEvent',
  );
  const client = new OpenMeterClient({
    url: config.openmeterUrl,
    token: config.openmeterToken,
    timeoutMs: config.requestTimeoutMs,
    retryAfterMaxMs: config.retryAfterMaxMs,
  });
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
  const mapping = { source: config.eventSource, type: config.eventType, subjectMap: config.subjectMap };

  const consumer = new BatchConsumer<CloudEvent>({
    kafka,
    groupId: config.consumerGroup,
    topics: [config.usageEventsTopic],
    logger,
    maxRows: config.batchMaxEvents,
    maxWaitMs: config.batchMaxWaitMs,
    backoff: { initialMs: config.retryInitialMs, maxMs: config.retryMaxMs },
    sessionTimeoutMs: config.sessionTimeoutMs,
    decode: async (source) => {
      const event = serde.decodeKnown(source.value) ?? (await serde.decode(source.value));
      return toCloudEvent(event, mapping);
    },
    deadLetter: async (source, error) => {
      await producer.send({
        topic: config.deadLetterTopic,
        messages: [
          deadLetterMessage(source, { code: error.code, message: error.message, service: SERVICE_NAME }),
        ],
      });
      deadLettered.inc({ reason: 'undecodable' });
    },
    flush: async (items) => {
      const rejected = await deliverBisecting(items, async (part) => {
        const outcome = await client.post(part.map((item) => item.value));
        requests.inc({ outcome: outcome.kind });
        if (outcome.kind === 'retry') {
          logger.warn(
            { status: outcome.status, retryAfterMs: outcome.retryAfterMs, events: part.length },
            `OpenMeter: ${outcome.reason}`,
          );
        }
        return outcome;
      });
      for (const { item, status, body } of rejected) {
        const message = deadLetterMessage(item.source, {
          code: 'GPUM_SINK_REJECTED',
          message: `OpenMeter answered ${status} for event ${item.value.id}`,
          service: SERVICE_NAME,
        });
        message.headers = { ...message.headers, [RESPONSE_BODY_HEADER]: body.slice(0, 8000) };
        await producer.send({ topic: config.deadLetterTopic, messages: [message] });
        deadLettered.inc({ reason: 'rejected' });
        logger.warn(
          {
            topic: item.source.topic,
            partition: item.source.partition,
            offset: item.source.offset,
            id: item.value.id,
            status,
          },
          'OpenMeter rejected an event; dead-lettered',
        );
      }
      delivered.inc(items.length - rejected.length);
    },
    onFlushed: (events, ms) => {
      if (events > 0) logger.info({ events, ms }, 'batch delivered');
    },
    onRetry: (stage, error) => {
      retries.inc({ stage });
      if (error instanceof DeliveryRetryError && (error.status === 401 || error.status === 403)) {
        logger.error({ status: error.status }, 'OpenMeter refused the token; check OPENMETER_TOKEN');
      }
    },
  });

  const ops = buildOpsServer({ logger, metrics, readiness: { kafka: () => consumer.ready } });
  await startOpsServer(ops, config.opsPort, config.opsHost);
  shutdown.register('ops server', () => ops.close());

  await consumer.start(config.fromBeginning, (error) => {
    logger.fatal({ err: error }, 'consumer crashed');
    void shutdown.run().finally(() => process.exit(1));
  });
  shutdown.register('consumer', () => consumer.close());
  logger.info(
    { topic: config.usageEventsTopic, endpoint: config.openmeterUrl, group: config.consumerGroup },
    'openmeter-forwarder started',
  );
}

run().catch((error: unknown) => exitOnStartupError(logger, error));
