import { readFileSync } from 'node:fs';
import { DEAD_LETTER_HEADERS, deadLetterMessage } from '@gpu-meter/kit/kafka';
import type { IHeaders } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  headerText,
  LATE_SAMPLE_CODE,
  planReplay,
  REPLAYED_FROM_HEADER,
  replayMessage,
  summarize,
  targetOf,
  USAGE_EVENTS_READERS,
  type DeadLetterRecord,
  type PlanOptions,
} from '../src/plan.js';

/** A constant of another service, read from its source (services import only the kit, never each other). */
function serviceConstant(path: string, name: string): string {
  const source = readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
  const match = new RegExp(`export const ${name} = '([^']+)'`).exec(source);
  if (!match) throw new Error(`${name} not found in ${path}`);
  return match[1]!;
}
const SINK = serviceConstant('clickhouse-sink/src/config.ts', 'SERVICE_NAME');
const FORWARDER = serviceConstant('openmeter-forwarder/src/config.ts', 'SERVICE_NAME');
const RESPONSE_BODY_HEADER = serviceConstant('openmeter-forwarder/src/outcome.ts', 'RESPONSE_BODY_HEADER');

const NOW = Date.UTC(2026, 0, 2);
const HOUR = 3_600_000;

const OPTIONS: PlanOptions = {
  errorCodes: [],
  sourceTopics: [],
  maxRecords: 10_000,
  maxAgeMs: 23 * HOUR,
  allowPastDedupe: false,
};

/** A dead letter as the services write it (the kit's deadLetterMessage), read back from its topic. */
function deadLetter(
  offset: number,
  failure: { code?: string; service?: string; sourceTopic?: string; sourcePartition?: number } = {},
  extra: { headers?: IHeaders; value?: Buffer | null; ageMs?: number } = {},
): DeadLetterRecord {
  const message = deadLetterMessage(
    {
      topic: failure.sourceTopic ?? 'runai.pod-allocations.v1',
      partition: failure.sourcePartition ?? 3,
      offset: String(1000 + offset),
      key: Buffer.from(`cluster-a/pod-${offset}`),
      value: extra.value === undefined ? Buffer.from([0, 0, 0, 0, 7, offset]) : extra.value,
      headers: { traceparent: Buffer.from('00-abc-01'), ...extra.headers },
    },
    {
      code: failure.code ?? 'GPUM_DECODE_FAILED',
      message: 'schema 7 not found',
      service: failure.service ?? 'usage-aggregator',
    },
  );
  // Headers come back from Kafka as Buffers.
  const headers = Object.fromEntries(
    Object.entries(message.headers!).map(([k, v]) => [k, Buffer.from(String(v))]),
  );
  return {
    topic: 'usage.dead-letters.v1',
    partition: 0,
    offset,
    timestampMs: NOW - (extra.ageMs ?? HOUR),
    key: message.key as Buffer,
    value: message.value as Buffer | null,
    headers,
  };
}

describe('targetOf', () => {
  it('sends an aggregator dead letter back to its source topic and partition (the task that dedupes it)', () => {
    expect(targetOf(deadLetter(1, { sourcePartition: 5 }), OPTIONS, NOW)).toEqual({
      topic: 'runai.pod-allocations.v1',
      partition: 5,
    });
  });

  it('lets the key choose the partition for a collector dead letter (no source partition) and for --to-topic', () => {
    const collector = deadLetter(1, { service: 'runai-collector', code: 'GPUM_SAMPLE_IDENTITY_TOO_LONG' });
    delete (collector.headers as Record<string, unknown>)[DEAD_LETTER_HEADERS.sourcePartition];
    expect(targetOf(collector, OPTIONS, NOW)).toEqual({ topic: 'runai.pod-allocations.v1' });
    expect(targetOf(deadLetter(1), { ...OPTIONS, toTopic: 'elsewhere' }, NOW)).toEqual({
      topic: 'elsewhere',
    });
  });

  it.each(USAGE_EVENTS_READERS)('never sends a %s dead letter back to the usage-events topic', (service) => {
    const record = deadLetter(1, { service, sourceTopic: 'usage.events.v1', code: 'GPUM_SINK_REJECTED' });
    for (const toTopic of [undefined, 'usage.events.v1']) {
      const target = targetOf(record, { ...OPTIONS, toTopic }, NOW);
      expect(target).toHaveProperty('refused');
      expect((target as { refused: string }).refused).toMatch(/every usage reader consumes.*--to-topic/);
    }
    expect(targetOf(record, { ...OPTIONS, toTopic: 'usage.openmeter-replay.v1' }, NOW)).toEqual({
      topic: 'usage.openmeter-replay.v1',
    });
  });

  it.each(USAGE_EVENTS_READERS)(
    'lets a %s dead letter go back to the replay topic only its one-off instance reads',
    (service) => {
      const replayTopic = service === SINK ? 'usage.sink-replay.v1' : 'usage.openmeter-replay.v1';
      const record = deadLetter(1, { service, sourceTopic: replayTopic, code: 'GPUM_SINK_REJECTED' });
      expect(targetOf(record, { ...OPTIONS, toTopic: replayTopic }, NOW)).toEqual({ topic: replayTopic });
      expect(targetOf(record, OPTIONS, NOW)).toHaveProperty('refused');
    },
  );

  it('knows the usage readers by the names the services dead-letter with', () => {
    expect([...USAGE_EVENTS_READERS].sort()).toEqual([SINK, FORWARDER].sort());
  });

  it('asks where late samples go: on their raw topic the aggregator drops them as duplicates', () => {
    const late = deadLetter(1, { code: LATE_SAMPLE_CODE }, { ageMs: 30 * HOUR });
    expect((targetOf(late, OPTIONS, NOW) as { refused: string }).refused).toMatch(/late sample.*--to-topic/);
    // Named explicitly, any receiver (also the raw topic, whatever its age: it was never billed).
    expect(targetOf(late, { ...OPTIONS, toTopic: 'team.late-samples' }, NOW)).toEqual({
      topic: 'team.late-samples',
    });
    expect(targetOf(late, { ...OPTIONS, toTopic: 'runai.pod-allocations.v1' }, NOW)).toEqual({
      topic: 'runai.pod-allocations.v1',
      partition: 3,
    });
  });

  it('refuses sample dead letters older than --max-age-ms on their raw topic unless --allow-past-dedupe', () => {
    const old = deadLetter(1, {}, { ageMs: 25 * HOUR });
    expect((targetOf(old, OPTIONS, NOW) as { refused: string }).refused).toMatch(
      /25 h ago.*allow-past-dedupe/,
    );
    expect(targetOf(old, { ...OPTIONS, allowPastDedupe: true }, NOW)).toEqual({
      topic: 'runai.pod-allocations.v1',
      partition: 3,
    });
    expect(targetOf(deadLetter(1, {}, { ageMs: 22 * HOUR }), OPTIONS, NOW)).not.toHaveProperty('refused');
  });

  it("refuses runai-collector's rejected-pod reports: JSON, not a sample", () => {
    const report = deadLetter(1, { service: 'runai-collector', code: 'GPUM_POD_REJECTED' });
    expect((targetOf(report, OPTIONS, NOW) as { refused: string }).refused).toMatch(/not a sample/);
  });

  it('refuses a record without bytes or without a source topic to go back to', () => {
    expect(targetOf(deadLetter(1, {}, { value: null }), OPTIONS, NOW)).toHaveProperty('refused');
    const orphan = deadLetter(1);
    delete (orphan.headers as Record<string, unknown>)[DEAD_LETTER_HEADERS.sourceTopic];
    expect((targetOf(orphan, OPTIONS, NOW) as { refused: string }).refused).toMatch(/--to-topic/);
    expect(targetOf(orphan, { ...OPTIONS, toTopic: 'raw' }, NOW)).toEqual({ topic: 'raw' });
  });
});

describe('replayMessage', () => {
  it('is the original record: key and bytes untouched, its own headers, no dead-letter headers, where it came from', () => {
    const record = deadLetter(
      7,
      { service: FORWARDER, sourceTopic: 'usage.events.v1' },
      {
        headers: {
          [RESPONSE_BODY_HEADER]: Buffer.from('{"error":"bad"}'),
          [REPLAYED_FROM_HEADER]: Buffer.from('x:0:1'),
        },
      },
    );
    const message = replayMessage(record, { topic: 'usage.openmeter-replay.v1' });
    expect(message.key).toBe(record.key);
    expect(message.value).toBe(record.value);
    expect(Buffer.from(message.value as Buffer)).toEqual(Buffer.from([0, 0, 0, 0, 7, 7]));
    expect(Object.keys(message.headers!).sort()).toEqual([REPLAYED_FROM_HEADER, 'traceparent']);
    expect(headerText(message.headers!, 'traceparent')).toBe('00-abc-01');
    expect(headerText(message.headers!, REPLAYED_FROM_HEADER)).toBe('usage.dead-letters.v1:0:7');
    expect(message).not.toHaveProperty('partition');
    expect(replayMessage(record, { topic: 'raw', partition: 2 }).partition).toBe(2);
  });
});

describe('planReplay', () => {
  const bounds = new Map([[0, { start: 0, end: 10 }]]);

  it('replays every record when nothing filters, and gets to the end', () => {
    const records = [deadLetter(2), deadLetter(0), deadLetter(5)];
    const plan = planReplay(records, bounds, OPTIONS, NOW);
    expect(plan.decisions.map((d) => [d.kind, d.record.offset])).toEqual([
      ['replay', 0],
      ['replay', 2],
      ['replay', 5],
    ]);
    expect(plan.complete).toBe(true);
    expect(plan.frontier.get(0)).toBe(10);
  });

  it('passes over records the filters leave out (error code, source topic)', () => {
    const records = [
      deadLetter(0, { code: 'GPUM_DECODE_FAILED' }),
      deadLetter(1, { code: 'GPUM_VALIDATION_FAILED' }),
      deadLetter(2, { code: 'GPUM_DECODE_FAILED', sourceTopic: 'gpu.bandwidth-samples.v1' }),
    ];
    const byCode = planReplay(records, bounds, { ...OPTIONS, errorCodes: ['GPUM_DECODE_FAILED'] }, NOW);
    expect(byCode.decisions.map((d) => d.kind)).toEqual(['replay', 'passed-over', 'replay']);
    const byBoth = planReplay(
      records,
      bounds,
      { ...OPTIONS, errorCodes: ['GPUM_DECODE_FAILED'], sourceTopics: ['gpu.bandwidth-samples.v1'] },
      NOW,
    );
    expect(byBoth.decisions.map((d) => d.kind)).toEqual(['passed-over', 'passed-over', 'replay']);
    expect(byBoth.decisions[2]).toMatchObject({
      target: { topic: 'gpu.bandwidth-samples.v1', partition: 3 },
    });
  });

  it('stops before the record over --max-records; the frontier is that record', () => {
    const twoPartitions = new Map([
      [0, { start: 0, end: 10 }],
      [1, { start: 4, end: 9 }],
    ]);
    const records = [0, 1, 2, 3].map((o) => deadLetter(o));
    const plan = planReplay(records, twoPartitions, { ...OPTIONS, maxRecords: 2 }, NOW);
    expect(plan.decisions.map((d) => d.record.offset)).toEqual([0, 1]);
    expect(plan.complete).toBe(false);
    expect(plan.frontier).toEqual(
      new Map([
        [0, 2],
        [1, 4],
      ]),
    );
  });

  it('counts per source topic, error code and target', () => {
    const records = [
      deadLetter(0),
      deadLetter(1),
      deadLetter(2, { code: 'GPUM_VALIDATION_FAILED' }),
      deadLetter(3, { code: LATE_SAMPLE_CODE }),
    ];
    const rows = summarize(
      planReplay(records, bounds, { ...OPTIONS, errorCodes: ['GPUM_DECODE_FAILED', LATE_SAMPLE_CODE] }, NOW)
        .decisions,
    );
    expect(
      rows.map(({ kind, sourceTopic, errorCode, records: n }) => [kind, sourceTopic, errorCode, n]),
    ).toEqual([
      ['replay', 'runai.pod-allocations.v1', 'GPUM_DECODE_FAILED', 2],
      ['passed-over', 'runai.pod-allocations.v1', 'GPUM_VALIDATION_FAILED', 1],
      ['refused', 'runai.pod-allocations.v1', LATE_SAMPLE_CODE, 1],
    ]);
    expect(rows[0]!.detail).toBe('runai.pod-allocations.v1');
  });
});
