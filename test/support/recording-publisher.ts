import type { Kafka } from 'kafkajs';
import { avroType, type SchemaName } from '@gpu-meter/kit/contracts';
import { createLogger } from '@gpu-meter/kit/runtime';
import { SamplePublisher, type SamplePublisherOptions, type TopicSerde } from '@gpu-meter/kit/kafka';

export interface RecordedMessage<T> {
  readonly key: string;
  readonly value: T;
}

/**
 * Publishes samples through a real SamplePublisher whose Kafka and registry are stand-ins, and returns
 * the messages as the producer was handed them: the keys decide the partition, so this is what a test
 * of partitioning needs, without a broker. Values round-trip through the real Avro schema.
 */
export async function publishedMessages<T>(
  schema: SchemaName,
  key: SamplePublisherOptions<T>['key'],
  samples: readonly T[],
): Promise<RecordedMessage<T>[]> {
  const type = avroType(schema);
  const sent: Array<{ key: string; value: Buffer }> = [];
  const producer = {
    events: { CONNECT: 'producer.connect', DISCONNECT: 'producer.disconnect' },
    on: () => () => {},
    connect: async () => {},
    disconnect: async () => {},
    send: async ({ messages }: { messages: Array<{ key: string; value: Buffer }> }) => {
      sent.push(...messages);
      return [];
    },
  };
  const serde = {
    topic: 'samples',
    register: async () => 1,
    encode: (sample: T) => type.toBuffer(sample),
  } as unknown as TopicSerde<T>;
  const publisher = new SamplePublisher<T>({
    kafka: { producer: () => producer } as unknown as Kafka,
    serde,
    key,
    logger: createLogger('test', 'silent'),
    maxBuffered: samples.length + 1,
  });
  publisher.publish(samples);
  await publisher.close(2_000);
  return sent.map((message) => ({ key: message.key, value: type.fromBuffer(message.value) as T }));
}
