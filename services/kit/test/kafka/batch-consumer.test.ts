import { EventEmitter } from 'node:events';
import type { EachBatchPayload, Kafka } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { GpuMeterError } from '@gpu-meter/kit/contracts';
import { createLogger } from '@gpu-meter/kit/runtime';
import { BatchConsumer, type BatchItem, type SourceRecord } from '@gpu-meter/kit/kafka';

/**
 * A stand-in for kafkajs's consumer that behaves as kafkajs does around a rebalance: REBALANCING is emitted,
 * then GROUP_JOIN with the new assignment, and every assigned partition is fetched again from its committed
 * offset (kafkajs builds a new OffsetManager on each sync, so offsets resolved but not committed are lost).
 */
class FakeGroup {
  readonly events = { CRASH: 'crash', GROUP_JOIN: 'join', REBALANCING: 'rebalancing' } as const;
  readonly emitter = new EventEmitter();
  /** Committed offset (next to read) per partition, as the broker holds it. */
  readonly committed = new Map<number, bigint>();
  /** Every commit request, in order: partition → offset. */
  readonly commits: Array<Array<[number, string]>> = [];
  /** The member's current assignment; a commit for anything else is recorded as a lost-partition commit. */
  assigned = new Set<number>();
  readonly lostPartitionCommits: Array<[number, string]> = [];
  failCommits = 0;
  private eachBatch: ((payload: EachBatchPayload) => Promise<void>) | undefined;
  /** Records per partition (offset = index). */
  readonly log = new Map<number, string[]>();

  constructor(partitions: Record<number, number>) {
    for (const [p, n] of Object.entries(partitions))
      this.log.set(
        Number(p),
        Array.from({ length: n }, (_, i) => `p${p}-${i}`),
      );
  }

  consumer() {
    return {
      events: this.events,
      on: (event: string, listener: (e: { payload: unknown }) => void) => this.emitter.on(event, listener),
      connect: async () => undefined,
      subscribe: async () => undefined,
      run: async (options: { eachBatch: (payload: EachBatchPayload) => Promise<void> }) => {
        this.eachBatch = options.eachBatch;
      },
      commitOffsets: async (offsets: Array<{ topic: string; partition: number; offset: string }>) => {
        if (this.failCommits > 0) {
          this.failCommits--;
          throw Object.assign(new Error('The coordinator is loading'), {
            type: 'COORDINATOR_LOAD_IN_PROGRESS',
          });
        }
        this.commits.push(offsets.map((o) => [o.partition, o.offset]));
        for (const o of offsets) {
          if (!this.assigned.has(o.partition)) this.lostPartitionCommits.push([o.partition, o.offset]);
          this.committed.set(o.partition, BigInt(o.offset));
        }
      },
      stop: async () => undefined,
      disconnect: async () => undefined,
    };
  }

  /** The group (re)assigns `partitions` to this member, as kafkajs reports it after sync. */
  join(partitions: number[]): void {
    this.assigned = new Set(partitions);
    this.emitter.emit(this.events.GROUP_JOIN, {
      payload: { memberAssignment: { t: partitions } },
    });
  }

  rebalance(partitions: number[]): void {
    this.emitter.emit(this.events.REBALANCING, { payload: {} });
    this.join(partitions);
  }

  /** The next heartbeat inside eachBatch answers as kafkajs does when the group starts rebalancing. */
  rebalanceOnHeartbeat = false;
  /** Heartbeats the handler sent: the member is evicted when none comes for a session timeout. */
  heartbeats = 0;

  /** Delivers records [from, to) of a partition to eachBatch (from defaults to the committed offset). */
  async fetch(partition: number, to: number, from?: number): Promise<void> {
    const start = from ?? Number(this.committed.get(partition) ?? 0n);
    const values = this.log.get(partition)!.slice(start, to);
    await this.eachBatch!({
      batch: {
        topic: 't',
        partition,
        messages: values.map((value, i) => ({
          offset: String(start + i),
          key: null,
          value: Buffer.from(value),
          headers: {},
          timestamp: '0',
          attributes: 0,
        })),
      },
      heartbeat: async () => {
        this.heartbeats++;
        if (!this.rebalanceOnHeartbeat) return;
        this.rebalanceOnHeartbeat = false;
        this.failCommits = 0; // the coordinator is back, and answers the heartbeat with the rebalance
        throw Object.assign(new Error('The group is rebalancing'), { type: 'REBALANCE_IN_PROGRESS' });
      },
      resolveOffset: () => undefined,
      isRunning: () => true,
      isStale: () => false,
    } as unknown as EachBatchPayload);
  }
}

let consumer: BatchConsumer<string> | undefined;
afterEach(async () => {
  await consumer?.close();
  consumer = undefined;
});

/** A consumer on `group` whose sink records every item it was given (what the receiver got). */
async function start(
  group: FakeGroup,
  maxRows: number,
  sink: {
    fail?: number;
    wantsMoreRecords?: boolean;
    decode?: (source: SourceRecord) => Promise<string>;
    deadLettered?: string[];
    /** How long each flush takes before it succeeds (a slow ClickHouse insert or OpenMeter POST). */
    flushMs?: number;
    sessionTimeoutMs?: number;
  } = {},
) {
  const posted: string[] = [];
  consumer = new BatchConsumer<string>({
    kafka: { consumer: () => group.consumer() } as unknown as Kafka,
    groupId: 'g',
    topics: ['t'],
    logger: createLogger('test', 'silent'),
    maxRows,
    // Flushes come from a full batch or close(), never from the clock: the test decides when.
    maxWaitMs: 3_600_000,
    backoff: { initialMs: 1, maxMs: 1 },
    ...(sink.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: sink.sessionTimeoutMs }),
    decode: sink.decode ?? (async (source) => source.value!.toString()),
    deadLetter: async (source) => void sink.deadLettered?.push(source.value!.toString()),
    flush: async (items: ReadonlyArray<BatchItem<string>>) => {
      if ((sink.fail ?? 0) > 0) {
        sink.fail!--;
        throw Object.assign(new Error('sink down'), { wantsMoreRecords: sink.wantsMoreRecords === true });
      }
      if (sink.flushMs) await new Promise((resolve) => setTimeout(resolve, sink.flushMs));
      posted.push(...items.map((item) => item.value));
    },
  });
  await consumer.start(false, () => undefined);
  return posted;
}

const duplicates = (values: string[]) => values.filter((v, i) => values.indexOf(v) !== i);

describe('BatchConsumer around rebalances (no resend without a crash)', () => {
  it('does not post twice the records kafkajs fetches again after a rebalance', async () => {
    const group = new FakeGroup({ 0: 8 });
    const posted = await start(group, 8);
    group.join([0]);
    await group.fetch(0, 5); // 5 records collected, not yet due
    group.rebalance([0]); // a second replica joined and the partition stayed here
    await group.fetch(0, 8); // kafkajs re-seeks to the committed offset (0): 0-4 again, then 5-7
    await consumer!.close();
    expect(duplicates(posted)).toEqual([]);
    expect([...posted].sort()).toEqual(group.log.get(0)!.slice().sort());
    expect(group.committed.get(0)).toBe(8n);
  });

  it('neither posts nor commits a partition it lost in a rebalance', async () => {
    const group = new FakeGroup({ 0: 4, 1: 4 });
    const posted = await start(group, 100);
    group.join([0, 1]);
    await group.fetch(1, 3); // collected, not flushed
    group.rebalance([0]); // partition 1 moved to another member, which reads it from offset 0
    await group.fetch(0, 4);
    await consumer!.close();
    expect(posted.filter((v) => v.startsWith('p1-'))).toEqual([]);
    expect(group.lostPartitionCommits).toEqual([]);
    expect(posted).toEqual(group.log.get(0));
  });

  it('never re-posts a batch whose POST succeeded but whose commit failed; commits it instead', async () => {
    const group = new FakeGroup({ 0: 7 });
    const posted = await start(group, 5);
    group.join([0]);
    group.failCommits = 1;
    await group.fetch(0, 5); // full: posted, the commit fails once, the retry commits
    expect(posted).toEqual(group.log.get(0)!.slice(0, 5));
    group.failCommits = 10;
    await group.fetch(0, 7, 5); // not full: collected
    group.rebalance([0]);
    group.failCommits = 0;
    // The records between the committed offset and what was posted come again after the rebalance.
    await group.fetch(0, 7);
    await consumer!.close();
    expect(duplicates(posted)).toEqual([]);
    expect(posted).toEqual(group.log.get(0));
    expect(group.committed.get(0)).toBe(7n);
  });

  it('commits what was posted before a rebalance takes the partition away', async () => {
    const group = new FakeGroup({ 0: 3 });
    const posted = await start(group, 3);
    group.join([0]);
    group.failCommits = 1_000_000; // the coordinator keeps failing while the batch is posted
    const fetching = group.fetch(0, 3);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(posted).toHaveLength(3);
    group.failCommits = 0;
    await fetching;
    group.rebalance([]);
    // The new owner starts at the committed offset: what was posted here must not be sent again there.
    expect(group.committed.get(0)).toBe(3n);
  });

  it('commits what was flushed when a heartbeat reports the rebalance, before kafkajs rejoins', async () => {
    const group = new FakeGroup({ 0: 3 });
    const posted = await start(group, 3);
    group.join([0]);
    group.failCommits = 1_000_000;
    group.rebalanceOnHeartbeat = true;
    // eachBatch ends with kafkajs's rebalance error (kafkajs then rejoins); the commit landed before it.
    await expect(group.fetch(0, 3)).rejects.toThrow(/rebalancing/);
    expect(group.committed.get(0)).toBe(3n);
    group.rebalance([]);
    expect(posted).toEqual(group.log.get(0));
    expect(group.lostPartitionCommits).toEqual([]);
  });

  it('heartbeats while a flush takes longer than the session timeout, so the group keeps the member', async () => {
    const group = new FakeGroup({ 0: 2 });
    // Session 300 ms: kafkajs heartbeats every 100 ms; the flush takes 1 s, three session timeouts.
    const posted = await start(group, 2, { flushMs: 1_000, sessionTimeoutMs: 300 });
    group.join([0]);
    await group.fetch(0, 2);
    expect(posted).toEqual(group.log.get(0));
    // One heartbeat per interval during the flush (allowing for a late timer), not only the one after it.
    expect(group.heartbeats).toBeGreaterThanOrEqual(5);
    expect(group.committed.get(0)).toBe(2n);
  });

  it('a rebalance reported during a slow flush ends the batch; the flush is committed, never posted again', async () => {
    const group = new FakeGroup({ 0: 2 });
    const posted = await start(group, 2, { flushMs: 500, sessionTimeoutMs: 300 });
    group.join([0]);
    group.rebalanceOnHeartbeat = true;
    await expect(group.fetch(0, 2)).rejects.toThrow(/rebalancing/);
    group.rebalance([0]);
    // kafkajs fetches again from the committed offset: the flushed records must have been committed.
    await group.fetch(0, 2);
    await consumer!.close();
    expect(posted).toEqual(group.log.get(0));
    expect(group.committed.get(0)).toBe(2n);
  });

  it('takes newer records while retrying a batch the sink holds for them (wantsMoreRecords)', async () => {
    const group = new FakeGroup({ 0: 5 });
    const posted = await start(group, 3, { fail: 1, wantsMoreRecords: true });
    group.join([0]);
    // The first flush (3 records) is held; the consumer takes the next 2 and flushes the 5 together.
    await group.fetch(0, 5);
    expect(posted).toEqual(group.log.get(0));
    expect(group.committed.get(0)).toBe(5n);
  });
});

describe('BatchConsumer during a decode outage (e.g. the schema registry)', () => {
  it('is not ready while a retriable decode error is retried, dead-letters nothing, and is ready after', async () => {
    const group = new FakeGroup({ 0: 2 });
    const readyAtEachTry: boolean[] = [];
    let outageTries = 3;
    const deadLettered: string[] = [];
    const posted = await start(group, 2, {
      deadLettered,
      decode: async (source) => {
        readyAtEachTry.push(consumer!.ready);
        if (outageTries-- > 0) {
          throw new GpuMeterError('SCHEMA_REGISTRY', 'registry down', { retriable: true });
        }
        return source.value!.toString();
      },
    });
    group.join([0]);
    await group.fetch(0, 2);
    // Ready at the first try; not ready at the retries; ready again for the next record.
    expect(readyAtEachTry).toEqual([true, false, false, false, true]);
    expect(consumer!.ready).toBe(true);
    expect(deadLettered).toEqual([]);
    expect(posted).toEqual(group.log.get(0));
  });
});
