import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunksBySize, messageBytes, sendInChunks, MAX_SEND_BYTES } from '@gpu-meter/kit/kafka';

const message = (bytes: number, key = 'k') => ({ key, value: Buffer.alloc(bytes) });

describe('chunksBySize', () => {
  it('keeps every message, in order, in runs within the byte budget', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 200 }), (sizes) => {
        const messages = sizes.map((size, i) => message(size, `key-${i}`));
        const chunks = chunksBySize(messages, 4096);
        expect(chunks.flat()).toEqual(messages);
        for (const chunk of chunks) {
          expect(chunk.length).toBeGreaterThan(0);
          const total = chunk.reduce((sum, m) => sum + messageBytes(m), 0);
          if (chunk.length > 1) expect(total).toBeLessThanOrEqual(4096);
        }
      }),
    );
  });

  it('sends a message larger than the budget alone rather than dropping it', () => {
    const chunks = chunksBySize([message(10), message(9000), message(10)], 4096);
    expect(chunks.map((c) => c.length)).toEqual([1, 1, 1]);
  });

  it('counts keys, values and headers', () => {
    const plain = messageBytes({ key: 'abc', value: Buffer.alloc(100) });
    const withHeaders = messageBytes({
      key: 'abc',
      value: Buffer.alloc(100),
      headers: { reason: 'x'.repeat(50), many: ['ab', Buffer.alloc(4)] },
    });
    expect(withHeaders - plain).toBe('reason'.length + 50 + 'many'.length + 2 + 4);
    expect(messageBytes({ key: null, value: null })).toBeLessThan(plain);
  });
});

describe('sendInChunks', () => {
  it('splits 1.5 MB of events into sends the broker accepts, in order', async () => {
    const messages = Array.from({ length: 6000 }, (_, i) => message(250, `tenant-${i}`));
    const sends: Array<{ topic: string; count: number; bytes: number }> = [];
    const seen: unknown[] = [];
    await sendInChunks(
      async ({ topic, messages: chunk }) => {
        sends.push({ topic, count: chunk.length, bytes: chunk.reduce((s, m) => s + messageBytes(m), 0) });
        seen.push(...chunk);
      },
      'usage',
      messages,
    );
    expect(sends.length).toBeGreaterThan(2);
    expect(sends.every((s) => s.topic === 'usage' && s.bytes <= MAX_SEND_BYTES)).toBe(true);
    expect(seen).toEqual(messages);
  });
});
