import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { packValues, viewValues, type PackedValues } from '../src/batch-transfer.js';

/** The values as the worker sees them: each a range of one buffer, or null. */
function unpackValues(packed: PackedValues): Array<Buffer | null> {
  const { bytes, starts, lengths } = viewValues(packed);
  return Array.from(lengths, (length, i) =>
    length < 0 ? null : bytes.subarray(starts[i], starts[i]! + length),
  );
}

describe('batch transfer', () => {
  it('unpacks exactly the values it packed, nulls and empty values included', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.uint8Array({ maxLength: 64 }), { nil: null })), (arrays) => {
        const values = arrays.map((a) => (a === null ? null : Buffer.from(a)));
        const unpacked = unpackValues(packValues(values));
        expect(unpacked).toHaveLength(values.length);
        unpacked.forEach((value, i) => {
          if (values[i] === null) expect(value).toBeNull();
          else expect(value!.equals(values[i]!)).toBe(true);
        });
      }),
    );
  });

  it('survives a transfer to another thread (structured clone with the buffer moved)', () => {
    const packed = packValues([Buffer.from('ab'), null, Buffer.from('cde')]);
    const moved = structuredClone(packed, { transfer: [packed.bytes] });
    expect(packed.bytes.byteLength).toBe(0); // moved, not copied
    expect(unpackValues(moved).map((v) => v?.toString() ?? null)).toEqual(['ab', null, 'cde']);
  });
});
