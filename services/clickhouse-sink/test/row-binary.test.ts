import { describe, expect, it } from 'vitest';
import { encodeRowBinary, type Column } from '../src/row-binary.js';
import { USAGE_COLUMNS } from '../src/row.js';
import { MIGRATIONS } from '../src/migrations.js';

type Row = { s: string; f: number; i: number | string; n: number; b: number; t: number };
const columns: Array<Column<Row>> = [
  { name: 's', type: 'String' },
  { name: 'f', type: 'Float64' },
  { name: 'i', type: 'Int64' },
  { name: 'n', type: 'Int32' },
  { name: 'b', type: 'UInt8' },
  { name: 't', type: 'DateTime' },
];

describe('encodeRowBinary', () => {
  it('writes each type as ClickHouse RowBinary expects, little-endian, in column order', () => {
    const row = { s: 'ab', f: 1.5, i: -2, n: 7, b: 1, t: 1_767_225_600 };
    const expected = Buffer.concat([
      Buffer.from([2, 0x61, 0x62]),
      Buffer.from('000000000000f83f', 'hex'),
      Buffer.from('feffffffffffffff', 'hex'),
      Buffer.from([7, 0, 0, 0]),
      Buffer.from([1]),
      Buffer.from('00b95569', 'hex'),
    ]);
    expect(encodeRowBinary(columns, [row])).toEqual(expected);
  });

  it('prefixes strings with their UTF-8 byte length as LEB128', () => {
    const long = 'é'.repeat(150); // 300 bytes
    const encoded = encodeRowBinary([{ name: 's', type: 'String' }], [{ ...rowOf(long) }]);
    expect([...encoded.subarray(0, 2)]).toEqual([0xac, 0x02]);
    expect(encoded.subarray(2).toString('utf8')).toBe(long);
  });

  it('keeps a float bit for bit (the reason it exists)', () => {
    const value = 0.1 + 0.2;
    const encoded = encodeRowBinary([{ name: 'f', type: 'Float64' }], [rowOf('', value)]);
    expect(encoded.readDoubleLE(0)).toBe(value);
  });

  it('takes 64-bit integers beyond 2^53 as strings', () => {
    const encoded = encodeRowBinary(
      [{ name: 'i', type: 'Int64' }],
      [{ ...rowOf(''), i: '9007199254740993' }],
    );
    expect(encoded.readBigInt64LE(0)).toBe(9007199254740993n);
  });

  it('encodes several rows back to back', () => {
    const encoded = encodeRowBinary([{ name: 'n', type: 'Int32' }], [rowOf('', 0, 1), rowOf('', 0, 2)]);
    expect([...encoded]).toEqual([1, 0, 0, 0, 2, 0, 0, 0]);
  });
});

describe('USAGE_COLUMNS', () => {
  it('names every column of the usage_events table with its type', () => {
    const ddl = MIGRATIONS[0]!.statements[0]!;
    const tableColumns = [...ddl.matchAll(/^\s+([a-z_]+) ([A-Za-z0-9]+)/gm)].map(([, name, type]) => ({
      name,
      type,
    }));
    expect(USAGE_COLUMNS.map(({ name, type }) => ({ name, type }))).toEqual(tableColumns);
  });
});

function rowOf(s: string, f = 0, n = 0): Row {
  return { s, f, i: 0, n, b: 0, t: 0 };
}
