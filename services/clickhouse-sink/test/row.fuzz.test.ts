import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PoisonRecordError } from '@gpu-meter/kit/contracts';
import { fuzz, usageEventArb } from '../../../test/support/fuzz.js';
import { encodeRowBinary, type Column } from '../src/row-binary.js';
import { toUsageRow, USAGE_COLUMNS, validateUsageEvent, type UsageRow } from '../src/row.js';

/**
 * The sink's path for one decoded event: validate (poison → dead letter), map, RowBinary-encode. An event
 * that passes validation must encode (a throw at insert time would fail the whole batch, forever), and
 * the bytes must carry exactly the row's values. Events come from TopicSerde, which hands over only values
 * the Avro schema accepts (kit serde.fuzz.test.ts), so the inputs here are the schema's whole domain.
 */
const source = fc.record({
  topic: fc.constantFrom('usage.events.v1', 't-ü'),
  partition: fc.nat({ max: 1000 }),
  offset: fc.bigInt({ min: 0n, max: 2n ** 53n - 1n }).map(String),
});

/** Reads RowBinary back, column by column (the inverse of encodeRowBinary, for the checks). */
function decodeRow(columns: ReadonlyArray<Column<UsageRow>>, bytes: Buffer): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  let at = 0;
  for (const { name, type } of columns) {
    switch (type) {
      case 'String': {
        let length = 0;
        let shift = 1;
        let byte: number;
        do {
          byte = bytes[at++]!;
          length += (byte & 0x7f) * shift;
          shift *= 128;
        } while (byte & 0x80);
        row[name] = bytes.subarray(at, at + length).toString('utf8');
        at += length;
        break;
      }
      case 'Float64':
        row[name] = bytes.readDoubleLE(at);
        at += 8;
        break;
      case 'Int64':
        row[name] = Number(bytes.readBigInt64LE(at));
        at += 8;
        break;
      case 'Int32':
        row[name] = bytes.readInt32LE(at);
        at += 4;
        break;
      case 'UInt8':
        row[name] = bytes.readUInt8(at);
        at += 1;
        break;
      case 'DateTime':
        row[name] = bytes.readUInt32LE(at);
        at += 4;
        break;
    }
  }
  expect(at).toBe(bytes.length);
  return row;
}

const asStored = (value: unknown) =>
  typeof value === 'string' ? Buffer.from(value, 'utf8').toString('utf8') : value;

describe('usage event → row → RowBinary under random events', () => {
  it('rejects as poison, or encodes losslessly', () => {
    fuzz(
      fc.property(
        usageEventArb,
        source,
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        (event, from, now) => {
          try {
            validateUsageEvent(event);
          } catch (error) {
            expect(error).toBeInstanceOf(PoisonRecordError);
            expect((error as PoisonRecordError).code).toBe('GPUM_VALIDATION_FAILED');
            return;
          }
          const row = toUsageRow(event, from, now);
          const bytes = encodeRowBinary(USAGE_COLUMNS, [row]);
          const back = decodeRow(USAGE_COLUMNS, bytes);
          for (const { name } of USAGE_COLUMNS) expect(back[name], name).toEqual(asStored(row[name]));
        },
      ),
      1500,
    );
  });
});
