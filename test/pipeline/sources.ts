import { ClickHouse, TopicSerde, USAGE_QUANTITIES, type UsageEvent } from '@gpu-meter/kit';
import type { Kafka } from 'kafkajs';
import type { QuantityRow } from './compare.js';

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
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(serde.topic);
  await admin.disconnect();
  const targets = new Map(ends.map((end) => [end.partition, Number(end.high)]));
  const positions = new Map(ends.map((end) => [end.partition, 0]));
  const caughtUp = () => [...targets].every(([partition, high]) => positions.get(partition)! >= high);
  const events: UsageEvent[] = [];
  const consumer = kafka.consumer({
    groupId: `verify-reader-${process.pid}-${Date.now()}`,
    readUncommitted: false,
    maxWaitTimeInMs: 200,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [serde.topic], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) events.push(await serde.decode(message.value));
        // Transaction markers and aborted records occupy offsets too: lastOffset() covers them.
        positions.set(batch.partition, Number(batch.lastOffset()) + 1);
      },
    });
    const deadline = Date.now() + 60_000;
    while (!caughtUp()) {
      if (Date.now() > deadline) throw new Error(`timed out reading ${serde.topic} to its end offsets`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await consumer.disconnect();
  }
  return events;
}

export async function clickhouseRows(clickhouse: ClickHouse, range: WindowRange): Promise<QuantityRow[]> {
  const columns = USAGE_QUANTITIES.map((quantity) => `sum(${snake(quantity)}) AS ${quantity}`).join(', ');
  return clickhouse.query<QuantityRow>(
    `SELECT subject, ${columns} FROM ${clickhouse.database}.usage_events FINAL ` +
      `WHERE window_start_ms >= ${Math.trunc(range.fromMs)} AND window_end_ms <= ${Math.trunc(range.toMs)} ` +
      `GROUP BY subject`,
  );
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** The quantities OpenMeter received: CloudEvent data of the accepted events, windows in range. */
export function openMeterRows(
  events: ReadonlyArray<{ subject: string; data: Record<string, unknown> }>,
  range: WindowRange,
): QuantityRow[] {
  return events
    .filter((event) => {
      const start = Number(event.data.windowStartMs ?? Date.parse(String((event as { time?: string }).time)));
      const end = Number(event.data.windowEndMs);
      return inRange(range, start, end);
    })
    .map((event) => ({
      ...(event.data as Partial<QuantityRow>),
      subject: String(event.data.subject ?? event.subject),
    }));
}
