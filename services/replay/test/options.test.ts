import { describe, expect, it } from 'vitest';
import { ConfigError } from '@gpu-meter/kit/contracts';
import { loadConfig } from '../src/config.js';
import { parseReplayArgs, UsageError } from '../src/options.js';

describe('parseReplayArgs', () => {
  it('needs only --topic; everything else has a default', () => {
    expect(parseReplayArgs(['--topic', 'usage.dead-letters.v1'])).toEqual({
      topic: 'usage.dead-letters.v1',
      dryRun: false,
      errorCodes: [],
      sourceTopics: [],
      toTopic: undefined,
      maxRecords: 10_000,
      maxAgeMs: 82_800_000,
      allowPastDedupe: false,
    });
  });

  it('takes repeated filters, a target and the limits', () => {
    const command = parseReplayArgs([
      '--topic=usage.openmeter-dead-letters.v1',
      '--dry-run',
      '--error-code',
      'GPUM_SINK_REJECTED',
      '--error-code',
      'GPUM_DECODE_FAILED',
      '--source-topic',
      'usage.events.v1',
      '--to-topic',
      'usage.openmeter-replay.v1',
      '--max-records',
      '5',
      '--max-age-ms',
      '1000',
      '--allow-past-dedupe',
    ]);
    expect(command).toMatchObject({
      dryRun: true,
      errorCodes: ['GPUM_SINK_REJECTED', 'GPUM_DECODE_FAILED'],
      sourceTopics: ['usage.events.v1'],
      toTopic: 'usage.openmeter-replay.v1',
      maxRecords: 5,
      maxAgeMs: 1000,
      allowPastDedupe: true,
    });
    expect(parseReplayArgs(['--help'])).toBe('help');
  });

  it.each([
    [[], /--topic is required/],
    [['--topic'], /--topic/],
    [['--topc', 'x'], /--topc/],
    [['--topic', 'a b'], /--topic must be a Kafka topic name/],
    [['--topic', 't', '--to-topic', 't'], /--to-topic must differ/],
    [['--topic', 't', '--max-records', '0'], /--max-records must be a positive integer/],
    [['--topic', 't', '--max-records', '1e3'], /--max-records/],
    [['--topic', 't', '--max-age-ms', '-5'], /--max-age-ms/],
    [['--topic', 't', '--error-code', 'decode failed'], /--error-code/],
    [['--topic', 't', 'extra'], /extra/],
  ])('fails fast naming the option: %j', (argv, message) => {
    expect(() => parseReplayArgs(argv)).toThrow(UsageError);
    expect(() => parseReplayArgs(argv)).toThrow(message);
  });
});

describe('loadConfig', () => {
  it('reads the Kafka settings as the services do, naming a bad variable', () => {
    expect(loadConfig({ KAFKA_BROKERS: 'a:9092,b:9092' }).kafkaBrokers).toEqual(['a:9092', 'b:9092']);
    expect(() => loadConfig({})).toThrow(ConfigError);
    expect(() => loadConfig({})).toThrow(/KAFKA_BROKERS/);
    expect(() => loadConfig({ KAFKA_BROKERS: 'a:1', KAFKA_TLS: 'maybe' })).toThrow(/KAFKA_TLS/);
  });
});
