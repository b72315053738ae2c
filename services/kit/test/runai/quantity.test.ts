import { describe, expect, it } from 'vitest';
import { parseBytes, parseQuantity, QuantityError } from '@gpu-meter/kit/runai';

describe('parseQuantity', () => {
  it.each([
    ['4', 4],
    ['500m', 0.5],
    ['100m', 0.1],
    ['2500m', 2.5],
    ['1.5', 1.5],
    ['0.25', 0.25],
    ['1k', 1000],
    ['64Mi', 64 * 2 ** 20],
    ['32Gi', 32 * 2 ** 30],
    ['1Ki', 1024],
    ['1Ti', 2 ** 40],
    ['2G', 2e9],
    ['1.5G', 1_500_000_000],
    ['3M', 3e6],
    ['129e6', 129e6],
    ['1E3', 1000],
    ['1E', 1e18],
    ['12e-3', 0.012],
    ['250u', 0.00025],
    ['.5', 0.5],
    ['+2', 2],
  ])('%s is %d', (text, expected) => {
    expect(parseQuantity(text)).toBe(expected);
  });

  it('rejects text that is not a quantity instead of billing zero', () => {
    for (const bad of ['', 'abc', '1 Gi', '1gi', '1GiB', '--1', '1..2']) {
      expect(() => parseQuantity(bad)).toThrow(QuantityError);
    }
  });

  it('rounds bytes up to a whole byte', () => {
    expect(parseBytes('1500m')).toBe(2);
    expect(parseBytes('128974848')).toBe(128974848);
    expect(parseBytes('1.5Ki')).toBe(1536);
  });
});
