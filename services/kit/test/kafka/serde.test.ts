import { describe, expect, it } from 'vitest';
import { deterministicId, PoisonRecordError } from '@gpu-meter/kit/contracts';
import { deadLetterMessage, readSchemaId, valueSubject } from '@gpu-meter/kit/kafka';

describe('Confluent wire format header', () => {
  it('reads the 4-byte big-endian schema id after magic byte 0', () => {
    expect(readSchemaId(Buffer.from([0, 0, 0, 1, 2, 9, 9]))).toBe(258);
  });

  it.each([
    ['null', null],
    ['too short', Buffer.from([0, 0, 1])],
    ['bad magic byte', Buffer.from([1, 0, 0, 0, 1, 2])],
  ])('rejects a %s message as poison', (_label, message) => {
    expect(() => readSchemaId(message)).toThrow(PoisonRecordError);
  });

  it('uses TopicNameStrategy subjects', () => {
    expect(valueSubject('usage.events.v1')).toBe('usage.events.v1-value');
  });
});

describe('deterministicId', () => {
  it('is stable and separates its parts unambiguously', () => {
    expect(deterministicId('c', 'pod', 1)).toBe(deterministicId('c', 'pod', 1));
    expect(deterministicId('ab', 'c')).not.toBe(deterministicId('a', 'bc'));
    expect(deterministicId('x')).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('deadLetterMessage', () => {
  it('keeps the original bytes and headers and names source and error', () => {
    const original = Buffer.from([7, 7, 7]);
    const message = deadLetterMessage(
      {
        topic: 't',
        partition: 2,
        offset: '41',
        key: Buffer.from('k'),
        value: original,
        headers: { trace: 'x' },
      },
      { code: 'GPUM_DECODE_FAILED', message: 'bad magic byte 7', service: 'usage-aggregator' },
    );
    expect(message.value).toBe(original);
    expect(message.headers).toMatchObject({
      trace: 'x',
      'gpu-meter.source.topic': 't',
      'gpu-meter.source.partition': '2',
      'gpu-meter.source.offset': '41',
      'gpu-meter.error.code': 'GPUM_DECODE_FAILED',
      'gpu-meter.error.message': 'bad magic byte 7',
    });
  });
});
