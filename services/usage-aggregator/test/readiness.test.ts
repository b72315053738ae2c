import { afterEach, describe, expect, it, vi } from 'vitest';
import { stubbedService } from './stub-service.js';

/**
 * Issue 13 point 7: a kafkajs consumer crash must not leave the aggregator "ready" while its ticker runs
 * on. kafkajs reports a crash it restarts from (restart: true) and one it gives up on (restart: false); the
 * consumer here is a stand-in that only emits those events, as kafkajs's does (GROUP_JOIN after each join).
 */
class ConsumerEvents {
  readonly events = { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash' } as const;
  private readonly handlers = new Map<string, (event: { payload: unknown }) => void>();
  on(event: string, handler: (event: { payload: unknown }) => void) {
    this.handlers.set(event, handler);
    return () => this.handlers.delete(event);
  }
  emit(event: string, payload: unknown): void {
    this.handlers.get(event)?.({ payload });
  }
  connect = async () => {};
  subscribe = async () => {};
  run = async () => {};
  disconnect = async () => {};
}

async function settled(): Promise<void> {
  // GROUP_JOIN's reassignment runs on the service's queue: a few turns of the event loop.
  for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

function started() {
  const consumer = new ConsumerEvents();
  const aggregator = stubbedService({
    config: { tickMs: 1_000, sessionTimeoutMs: 30_000 },
    kafka: { consumer: () => consumer },
    driver: { call: async () => ({}) },
  });
  const lost: unknown[] = [];
  return { aggregator, consumer, lost, start: () => aggregator.start((error) => lost.push(error)) };
}

describe('AggregatorService readiness through consumer crashes', () => {
  it('is not ready from a crash kafkajs restarts from until the group has assigned tasks again', async () => {
    const { aggregator, consumer, lost, start } = started();
    await start();
    expect(aggregator.ready).toBe(false);
    consumer.emit(consumer.events.GROUP_JOIN, { memberAssignment: {} });
    await settled();
    expect(aggregator.ready).toBe(true);

    consumer.emit(consumer.events.CRASH, { error: new Error('broker gone'), restart: true });
    expect(aggregator.ready).toBe(false);
    await settled();
    expect(aggregator.ready).toBe(false);
    expect(lost).toEqual([]);

    consumer.emit(consumer.events.GROUP_JOIN, { memberAssignment: {} });
    await settled();
    expect(aggregator.ready).toBe(true);
    await aggregator.stop();
  });

  it('is not ready, and reports the consumer lost, after a crash kafkajs will not restart from', async () => {
    const { aggregator, consumer, lost, start } = started();
    await start();
    consumer.emit(consumer.events.GROUP_JOIN, { memberAssignment: {} });
    await settled();
    const error = new Error('not retriable');
    consumer.emit(consumer.events.CRASH, { error, restart: false });
    expect(aggregator.ready).toBe(false);
    expect(lost).toEqual([error]);
    await aggregator.stop();
  });
});

describe('AggregatorService readiness while its turns stall', () => {
  afterEach(() => vi.useRealTimers());

  // Beside two CPU hogs the aggregator consumed nothing for 2 min (member evicted, every window unbilled),
  // and /readyz, set at each assignment, would have answered ready: a turn that never ends must show there.
  it('is not ready, saying why, once no batch, tick or rebalance has finished for the session timeout', async () => {
    vi.useFakeTimers();
    const { aggregator, consumer, start } = started();
    await start();
    consumer.emit(consumer.events.GROUP_JOIN, { memberAssignment: {} });
    await vi.advanceTimersByTimeAsync(0);
    expect(aggregator.readiness()).toBe(true);
    const internals = aggregator as unknown as { exclusive(work: () => Promise<void>): Promise<void> };
    let release!: () => void;
    void internals.exclusive(() => new Promise<void>((resolve) => (release = resolve)));
    await vi.advanceTimersByTimeAsync(29_000);
    expect(aggregator.readiness()).toBe(true);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(aggregator.readiness()).toEqual({
      ready: false,
      reason: expect.stringMatching(/no batch, idle tick or rebalance has finished for 3\d{4} ms/),
    });
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(aggregator.readiness()).toBe(true);
    await aggregator.stop();
  });

  it('says why it is not ready before its first assignment', async () => {
    const { aggregator, start } = started();
    await start();
    expect(aggregator.readiness()).toEqual({
      ready: false,
      reason: expect.stringMatching(/task assignment/),
    });
    await aggregator.stop();
  });
});
