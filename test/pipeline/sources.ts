import { USAGE_QUANTITIES, type UsageEvent } from '@gpu-meter/kit/contracts';
import { TopicSerde } from '@gpu-meter/kit/kafka';
import { ClickHouse } from '@gpu-meter/kit/clickhouse';
import type { Kafka } from 'kafkajs';
import { INVOICE_DIMENSIONS, type UsageRow } from './compare.js';

/** Billed window range compared by verify: windows with start >= fromMs and end <= toMs. */
export interface WindowRange {
  fromMs: number;
  toMs: number;
}

export function inRange(range: WindowRange, windowStartMs: number, windowEndMs: number): boolean {
  return windowStartMs >= range.fromMs && windowEndMs <= range.toMs;
}

/**
 * Reads every committed usage event on the topic (read_committed, from the beginning, in a throwaway
 * group) until the topic's end offsets are reached.
 */
export async function readUsageEvents(kafka: Kafka, serde: TopicSerde<UsageEvent>): Promise<UsageEvent[]> {
  return (await readRecords(kafka, serde)).map((record) => record.value);
}

export interface TopicRecord<T> {
  partition: number;
  offset: number;
  value: T;
  headers: Record<string, string>;
}

/**
 * Every committed record of `serde.topic` decoded, each partition in offset order (the order a consumer
 * such as the aggregator takes them), read from the beginning in a throwaway group until the end offsets.
 * With `decode: false` the values are left undecoded (a dead-letter topic holds anything).
 */
export async function readRecords<T>(kafka: Kafka, serde: TopicSerde<T>): Promise<TopicRecord<T>[]>;
export async function readRecords(
  kafka: Kafka,
  topic: { topic: string; decode?: undefined },
): Promise<TopicRecord<Buffer | null>[]>;
export async function readRecords<T>(
  kafka: Kafka,
  source: TopicSerde<T> | { topic: string; decode?: undefined },
): Promise<TopicRecord<T | Buffer | null>[]> {
  const { topic } = source;
  const decode = source instanceof TopicSerde ? (value: Buffer | null) => source.decode(value) : undefined;
  const admin = kafka.admin();
  await admin.connect();
  // A failed read must not leave the connection open: it kept the faults runner alive after its last line.
  const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const targets = new Map(ends.map((end) => [end.partition, Number(end.high)]));
  const positions = new Map(ends.map((end) => [end.partition, 0]));
  const caughtUp = () => [...targets].every(([partition, high]) => positions.get(partition)! >= high);
  const records: TopicRecord<T | Buffer | null>[] = [];
  const consumer = kafka.consumer({
    groupId: `verify-reader-${process.pid}-${Date.now()}`,
    readUncommitted: false,
    maxWaitTimeInMs: 200,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          const headers = Object.fromEntries(
            Object.entries(message.headers ?? {}).map(([name, value]) => [name, String(value ?? '')]),
          );
          records.push({
            partition: batch.partition,
            offset: Number(message.offset),
            value: decode ? await decode(message.value) : message.value,
            headers,
          });
        }
        // Transaction markers and aborted records occupy offsets too: lastOffset() covers them.
        positions.set(batch.partition, Number(batch.lastOffset()) + 1);
      },
    });
    const deadline = Date.now() + 60_000;
    while (!caughtUp()) {
      if (Date.now() > deadline) throw new Error(`timed out reading ${topic} to its end offsets`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await consumer.disconnect();
  }
  return records.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

/** ClickHouse's usage per invoice line (through FINAL: one row per event id, whatever merged). */
export async function clickhouseRows(clickhouse: ClickHouse, range: WindowRange): Promise<UsageRow[]> {
  const columns = USAGE_QUANTITIES.map((quantity) => `sum(${snake(quantity)}) AS ${quantity}`).join(', ');
  const dimensions = [...INVOICE_DIMENSIONS, 'windowStartMs', 'windowEndMs']
    .map((name) => (snake(name) === name ? name : `${snake(name)} AS ${name}`))
    .join(', ');
  const rows = await clickhouse.query<UsageRow>(
    `SELECT ${dimensions}, ${columns} FROM ${clickhouse.database}.usage_events FINAL ` +
      `WHERE window_start_ms >= ${Math.trunc(range.fromMs)} AND window_end_ms <= ${Math.trunc(range.toMs)} ` +
      `GROUP BY ${[...INVOICE_DIMENSIONS, 'windowStartMs', 'windowEndMs'].map(snake).join(', ')}`,
  );
  // Int64 arrives as a string in JSON formats.
  return rows.map((row) => ({
    ...row,
    windowStartMs: Number(row.windowStartMs),
    windowEndMs: Number(row.windowEndMs),
  }));
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** The usage OpenMeter received: CloudEvent data of the accepted events, windows in range. */
export function openMeterRows(
  events: ReadonlyArray<{ subject?: unknown; time?: unknown; data?: unknown }>,
  range: WindowRange,
): UsageRow[] {
  return events
    .map((event) => {
      const data = (event.data ?? {}) as Record<string, unknown>;
      return {
        ...(data as Partial<UsageRow>),
        subject: String(event.subject),
        windowStartMs: Number(data.windowStartMs ?? Date.parse(String(event.time))),
        windowEndMs: Number(data.windowEndMs),
      };
    })
    .filter((row) => inRange(range, row.windowStartMs, row.windowEndMs));
}
