/**
 * How another team subscribes to usage.events.v1: a plain kafkajs consumer reading committed events only
 * (the aggregator writes them in transactions), decoding Avro through the schema registry.
 *
 *   KAFKA_BROKERS=localhost:9092 SCHEMA_REGISTRY_URL=http://localhost:8081 node --import tsx examples/usage-consumer.ts
 *
 * Events are final per (group key, window) and carry a deterministic `id`: store them keyed by id and a
 * redelivery after your own crash changes nothing. `correction: true` events add to their window's totals.
 */
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { Kafka } from 'kafkajs';
import { readStackEnvFile } from '../test/support/stack-env.js';

const stack = readStackEnvFile();
const brokers = (process.env.KAFKA_BROKERS ?? stack.KAFKA_BROKERS ?? 'localhost:9092').split(',');
const registry = new SchemaRegistry({
  host: process.env.SCHEMA_REGISTRY_URL ?? stack.SCHEMA_REGISTRY_URL ?? 'http://localhost:8081',
});
const topic = process.env.USAGE_EVENTS_TOPIC ?? 'usage.events.v1';

const kafka = new Kafka({ clientId: 'usage-consumer-example', brokers });
const consumer = kafka.consumer({
  groupId: process.env.GROUP_ID ?? 'usage-consumer-example',
  readUncommitted: false,
});
await consumer.connect();
await consumer.subscribe({ topics: [topic], fromBeginning: true });
await consumer.run({
  eachMessage: async ({ message }) => {
    const event = (await registry.decode(message.value!)) as {
      id: string;
      subject: string;
      windowStartMs: number;
      gpuType: string;
      gpuAllocationSeconds: number;
    };
    process.stdout.write(
      `${new Date(event.windowStartMs).toISOString()} ${event.subject} ${event.gpuType || 'cpu'} ` +
        `${(event.gpuAllocationSeconds / 3600).toFixed(6)} GPU-h (${event.id.slice(0, 12)})\n`,
    );
  },
});
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => void consumer.disconnect().then(() => process.exit(0)));
