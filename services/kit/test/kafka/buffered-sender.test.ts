import { describe, expect, it } from 'vitest';
import { createLogger } from '@gpu-meter/kit/runtime';
import { BufferedSender, type OutgoingMessage } from '@gpu-meter/kit/kafka';

const logger = createLogger('test', 'silent');
const msg = (n: number): OutgoingMessage => ({ key: `k${n}`, value: Buffer.from(String(n)) });
const keys = (messages: OutgoingMessage[]) => messages.map((m) => m.key);

/** A Kafka stand-in that can be taken down and brought back. */
function fakeKafka() {
  const delivered: OutgoingMessage[] = [];
  const state = { up: true, attempts: 0 };
  const send = async (messages: OutgoingMessage[]) => {
    state.attempts += 1;
    await new Promise((resolve) => setTimeout(resolve, 1));
    if (!state.up) throw new Error('broker unreachable');
    delivered.push(...messages);
  };
  return { delivered, state, send };
}

describe('BufferedSender', () => {
  it('sends everything in order', async () => {
    const kafka = fakeKafka();
    const sender = new BufferedSender(kafka.send, { maxBuffered: 100, maxBatch: 3, logger });
    sender.enqueue([1, 2, 3, 4, 5].map(msg));
    sender.enqueue([6, 7].map(msg));
    expect(await sender.drain(2_000)).toBe(true);
    expect(keys(kafka.delivered)).toEqual(['k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7']);
  });

  it('keeps samples through an outage and delivers them in order, once, when Kafka is back', async () => {
    const kafka = fakeKafka();
    let errors = 0;
    const sender = new BufferedSender(kafka.send, {
      maxBuffered: 100,
      retryInitialMs: 5,
      retryMaxMs: 10,
      logger,
      onSendError: () => (errors += 1),
    });
    kafka.state.up = false;
    sender.enqueue([1, 2].map(msg));
    await new Promise((resolve) => setTimeout(resolve, 60));
    sender.enqueue([3].map(msg));
    expect(sender.size).toBe(3);
    expect(errors).toBeGreaterThan(1);
    kafka.state.up = true;
    expect(await sender.drain(2_000)).toBe(true);
    expect(keys(kafka.delivered)).toEqual(['k1', 'k2', 'k3']);
  });

  it('past the bound drops the oldest samples not in flight, and counts them', async () => {
    const delivered: OutgoingMessage[] = [];
    let release!: (ok: boolean) => void;
    const send = (messages: OutgoingMessage[]) =>
      new Promise<void>((resolve, reject) => {
        release = (ok) => (ok ? (delivered.push(...messages), resolve()) : reject(new Error('down')));
      });
    let dropped = 0;
    const sender = new BufferedSender(send, {
      maxBuffered: 4,
      maxBatch: 2,
      retryInitialMs: 100,
      retryMaxMs: 100,
      logger,
      onDropped: (n) => (dropped += n),
    });
    sender.enqueue([1, 2, 3].map(msg));
    // k1, k2 are in flight: the overflow drops k3 and k4, the oldest behind them.
    expect(sender.enqueue([4, 5, 6].map(msg))).toBe(2);
    release(false);
    await new Promise((resolve) => setTimeout(resolve, 10));
    // Backing off, nothing in flight: the oldest, k1, goes first.
    expect(sender.enqueue([msg(7)])).toBe(1);
    expect(dropped).toBe(3);
    await new Promise((resolve) => setTimeout(resolve, 150));
    release(true);
    await new Promise((resolve) => setTimeout(resolve, 5));
    release(true);
    expect(await sender.drain(1_000)).toBe(true);
    expect(keys(delivered)).toEqual(['k2', 'k5', 'k6', 'k7']);
  });

  it('close reports what it could not send', async () => {
    const kafka = fakeKafka();
    kafka.state.up = false;
    const sender = new BufferedSender(kafka.send, { maxBuffered: 10, retryInitialMs: 1_000, logger });
    sender.enqueue([1, 2].map(msg));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await sender.close()).toBe(2);
    expect(() => sender.enqueue([msg(3)])).toThrow(/closed/);
  });

  it('rejects a bound that is not a positive integer', () => {
    expect(() => new BufferedSender(async () => {}, { maxBuffered: 0, logger })).toThrow(RangeError);
  });
});
