import avro from 'avsc';
import { describe, expect, it, onTestFinished } from 'vitest';
import { readSchemaText, type UsageEvent } from '@gpu-meter/kit/contracts';
import { readConfig } from '@gpu-meter/kit/config';
import {
  createSchemaRegistry,
  ensureTopics,
  retryConcurrentTransactions,
  TopicSerde,
} from '@gpu-meter/kit/kafka';
import { ClickHouse, clickhouseConfigSpec, quote } from '@gpu-meter/kit/clickhouse';
import { readFileSync } from 'node:fs';
import { SchemaType } from '@kafkajs/confluent-schema-registry';
import { usageEventFixture } from '../../../test/support/fixtures.js';
import {
  createTopics,
  readTopic,
  stackEnv,
  testAdmin,
  testKafka,
  uniqueName,
} from '../../../test/support/kafka.js';

function registrySettings() {
  return { schemaRegistryUrl: stackEnv().SCHEMA_REGISTRY_URL! };
}

describe('ensureTopics against real Kafka', () => {
  it('creates missing topics with partitions, retention and compaction, and is idempotent', async () => {
    const admin = await testAdmin();
    const events = uniqueName('kit-events');
    const compacted = uniqueName('kit-state');
    const specs = [
      { topic: events, partitions: 3, replicationFactor: 1, retentionMs: 3_600_000 },
      { topic: compacted, partitions: 1, replicationFactor: 1, compacted: true },
    ];
    expect(await ensureTopics(admin, specs)).toEqual([events, compacted]);
    expect(await ensureTopics(admin, specs)).toEqual([]);

    const metadata = await admin.fetchTopicMetadata({ topics: [events, compacted] });
    expect(metadata.topics.find((t) => t.name === events)?.partitions).toHaveLength(3);
    const configs = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [
        { type: 2, name: events, configNames: ['retention.ms', 'cleanup.policy'] },
        { type: 2, name: compacted, configNames: ['cleanup.policy'] },
      ],
    });
    const value = (topic: string, name: string) =>
      configs.resources
        .find((r) => r.resourceName === topic)
        ?.configEntries.find((e) => e.configName === name)?.configValue;
    expect(value(events, 'retention.ms')).toBe('3600000');
    expect(value(events, 'cleanup.policy')).toBe('delete');
    expect(value(compacted, 'cleanup.policy')).toBe('compact');
  });
});

describe('Avro serde through the schema registry', () => {
  it('registers under <topic>-value with BACKWARD compatibility and round-trips through Kafka', async () => {
    const topic = uniqueName('kit-avro');
    const admin = await testAdmin();
    await createTopics(admin, [topic]);
    const registry = createSchemaRegistry(registrySettings());
    const serde = new TopicSerde<UsageEvent>(registry, registrySettings(), topic, 'usageEvent');
    const id = await serde.register();
    expect(await serde.register()).toBe(id); // registering the same schema again is a no-op

    const config = await fetch(`${registrySettings().schemaRegistryUrl}/config/${topic}-value`);
    expect(config.status).toBe(200);
    expect(((await config.json()) as { compatibilityLevel: string }).compatibilityLevel).toBe('BACKWARD');

    const producer = testKafka().producer();
    await producer.connect();
    onTestFinished(() => producer.disconnect());
    const event = usageEventFixture({ id: uniqueName('event') });
    await producer.send({ topic, messages: [{ key: event.subject, value: serde.encode(event) }] });

    const [record] = await readTopic(topic, { count: 1 });
    expect(record!.message.value!.readUInt32BE(1)).toBe(id);
    // A fresh serde knows no ids yet: decoding fetches the writer schema from the registry by id.
    const reader = new TopicSerde<UsageEvent>(
      createSchemaRegistry(registrySettings()),
      registrySettings(),
      topic,
      'usageEvent',
    );
    expect(await reader.decode(record!.message.value)).toEqual(event);
  });

  it('accepts a backward-compatible evolution, rejects an incompatible one, and reads old data as new', async () => {
    const topic = uniqueName('kit-evolve');
    const settings = registrySettings();
    const registry = createSchemaRegistry(settings);
    const subject = `${topic}-value`;
    const v1Text = readFileSync(
      new URL('../../../schemas/released/usage-event/v1.avsc', import.meta.url),
      'utf8',
    );
    await fetch(`${settings.schemaRegistryUrl}/config/${subject}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ compatibility: 'BACKWARD' }),
    });
    const { id: v1Id } = await registry.register({ type: SchemaType.AVRO, schema: v1Text }, { subject });

    // Incompatible: a new required field without a default.
    const broken = JSON.parse(readSchemaText('usageEvent')) as { fields: object[] };
    broken.fields.push({ name: 'region', type: 'string' });
    const rejected = await fetch(`${settings.schemaRegistryUrl}/subjects/${subject}/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schema: JSON.stringify(broken) }),
    });
    expect(rejected.status).toBe(409);

    const serde = new TopicSerde<UsageEvent>(registry, settings, topic, 'usageEvent');
    const v2Id = await serde.register();
    expect(v2Id).not.toBe(v1Id);

    const { correction: _absent, ...legacyEvent } = usageEventFixture();
    const v1Type = avro.Type.forSchema(JSON.parse(v1Text) as avro.Schema);
    const body = v1Type.toBuffer(legacyEvent);
    const header = Buffer.alloc(5);
    header.writeUInt32BE(v1Id, 1);
    expect(await serde.decode(Buffer.concat([header, body]))).toEqual({ ...legacyEvent, correction: false });
  });
});

describe('Avro projection (readFields)', () => {
  it('decodes only the named fields, equal to the full decode, from registered and fetched schemas', async () => {
    const topic = uniqueName('kit-projection');
    const settings = registrySettings();
    const full = new TopicSerde<UsageEvent>(createSchemaRegistry(settings), settings, topic, 'usageEvent');
    await full.register();
    const fields = ['id', 'subject', 'gpuAllocationSeconds'] as const;
    const projected = new TopicSerde<Pick<UsageEvent, (typeof fields)[number]>>(
      createSchemaRegistry(settings),
      settings,
      topic,
      'usageEvent',
      { readFields: fields },
    );
    const event = usageEventFixture({ id: uniqueName('event'), gpuAllocationSeconds: 1.5 });
    const bytes = full.encode(event);
    const expected = { id: event.id, subject: event.subject, gpuAllocationSeconds: 1.5 };
    // Unknown id: fetched from the registry, then decoded synchronously from the cache.
    expect(projected.decodeKnown(bytes)).toBeUndefined();
    expect(await projected.decode(bytes)).toEqual(expected);
    expect(projected.decodeKnown(bytes)).toEqual(expected);
    // Registered by this serde: its own id resolves through the projection too.
    await projected.register();
    expect(projected.decodeKnown(bytes)).toEqual(expected);
    expect(projected.encode(event).equals(bytes)).toBe(true);
    // A skipped field still has to be there: cutting the record short is poison, not a partial value.
    expect(() => projected.decodeKnown(bytes.subarray(0, bytes.length - 3))).toThrow(/does not decode/);
    expect(
      () =>
        new TopicSerde(createSchemaRegistry(settings), settings, topic, 'usageEvent', {
          readFields: ['id', 'nope'],
        }),
    ).toThrow(/not fields of .*: nope/);
  });
});

describe('Kafka transactions', () => {
  it('shows a committed transaction to read_committed consumers and hides an aborted one', async () => {
    const topic = uniqueName('kit-txn');
    const admin = await testAdmin();
    await createTopics(admin, [topic]);
    const producer = testKafka().producer({
      transactionalId: uniqueName('kit-txn'),
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    onTestFinished(() => producer.disconnect());

    const aborted = await producer.transaction();
    await aborted.send({ topic, messages: [{ key: 'k', value: 'aborted' }] });
    await aborted.abort();
    const committed = await producer.transaction();
    await committed.send({ topic, messages: [{ key: 'k', value: 'committed' }] });
    await committed.commit();

    const readCommitted = await readTopic(topic, { idleMs: 1500 });
    expect(readCommitted.map((r) => String(r.message.value))).toEqual(['committed']);
    const readUncommitted = await readTopic(topic, { idleMs: 1500, readUncommitted: true });
    expect(readUncommitted.map((r) => String(r.message.value))).toEqual(['aborted', 'committed']);
  });

  it('moves the group offset with sendOffsets only when the transaction commits', async () => {
    const topic = uniqueName('kit-offsets');
    const groupId = uniqueName('kit-group');
    const admin = await testAdmin();
    await createTopics(admin, [topic]);
    const producer = testKafka().producer({
      transactionalId: uniqueName('kit-offsets'),
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    onTestFinished(() => producer.disconnect());
    const offsets = async () => (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions[0]!;

    const aborted = await producer.transaction();
    await aborted.sendOffsets({
      consumerGroupId: groupId,
      topics: [{ topic, partitions: [{ partition: 0, offset: '5' }] }],
    });
    await aborted.abort();
    expect((await offsets()).offset).toBe('-1');

    const committed = await producer.transaction();
    // Right after the abort the coordinator may still be writing its markers (CONCURRENT_TRANSACTIONS).
    await retryConcurrentTransactions(() =>
      committed.sendOffsets({
        consumerGroupId: groupId,
        topics: [{ topic, partitions: [{ partition: 0, offset: '7' }] }],
      }),
    );
    await committed.commit();
    // EndTxn answers once the transaction coordinator has logged PREPARE_COMMIT; the group coordinator
    // materializes the offsets when the commit marker reaches __consumer_offsets, a moment later, and
    // kafkajs' OffsetFetch does not ask for stable offsets. So poll, bounded: the abort above must still
    // never show its 5.
    await expect.poll(async () => (await offsets()).offset, { timeout: 10_000, interval: 100 }).toBe('7');
  });
});

describe('ClickHouse client wrapper', () => {
  it('creates a table, inserts JSONEachRow rows and reads them back with quoted literals', async () => {
    const env = stackEnv();
    const settings = readConfig(clickhouseConfigSpec, {
      ...env,
      CLICKHOUSE_DATABASE: uniqueName('kit').replace(/-/g, '_'),
    });
    const clickhouse = new ClickHouse(settings);
    onTestFinished(async () => {
      await clickhouse.command(`DROP DATABASE IF EXISTS ${settings.clickhouseDatabase}`);
      await clickhouse.close();
    });
    expect(await clickhouse.ping()).toBe(true);
    await clickhouse.command(`CREATE DATABASE IF NOT EXISTS ${settings.clickhouseDatabase}`);
    await clickhouse.command(
      `CREATE TABLE ${settings.clickhouseDatabase}.rows (subject String, seconds Float64, at Int64) ENGINE = MergeTree ORDER BY subject`,
    );
    await clickhouse.insert('rows', [
      { subject: "o'brien", seconds: 1.5, at: 1_767_225_600_000 },
      { subject: 'acme', seconds: 0.25, at: 1_767_225_660_000 },
    ]);
    const rows = await clickhouse.query<{ subject: string; total: number }>(
      `SELECT subject, sum(seconds) AS total FROM ${settings.clickhouseDatabase}.rows WHERE subject = ${quote("o'brien")} GROUP BY subject`,
    );
    expect(rows).toEqual([{ subject: "o'brien", total: 1.5 }]);
  });
});
