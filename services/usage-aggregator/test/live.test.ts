import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deterministicId, type UsageEvent } from '@gpu-meter/kit/contracts';
import { AggregatorDriver, type Committed, type DriverRecord } from '../src/driver.js';
import { baseSettings, bw, pod, POD, BW, tp, pair } from './harness.js';

/**
 * The kill test's shape in pure form: data is produced chunk by chunk while the task runs, so inputs flip
 * between caught up and behind (the max-watermark rule), ticks pass wall time, and crashes restore from
 * the last commit. Outputs must equal a run that saw all data at once.
 */
const settings = { ...baseSettings, graceMs: 1500, dedupeRetentionMs: 1000 };
const subjects = ['a', 'b', 'c'];

function chunkRecords(k: number): Array<{ topic: string; decoded: DriverRecord['decoded'] }> {
  const out: Array<{ topic: string; decoded: DriverRecord['decoded']; key: number }> = [];
  let i = 0;
  for (let t = 1_000_000 + k * 1000 + 250; t <= 1_000_000 + (k + 1) * 1000; t += 250) {
    for (const subject of subjects) {
      const common = { subject, observedAtMs: t, spanStartMs: t - 250 };
      const p = {
        topic: POD,
        decoded: { kind: 'pod' as const, value: pod({ ...common, id: deterministicId('p', subject, t) }) },
      };
      const b = {
        topic: BW,
        decoded: {
          kind: 'bandwidth' as const,
          value: bw({ ...common, id: deterministicId('b', subject, t) }),
        },
      };
      for (const r of [p, b]) {
        const copies = i++ % 5 === 0 ? 2 : 1;
        for (let c = 0; c < copies; c++) out.push({ ...r, key: t + ((i * 7919 + c * 13) % 250) });
      }
    }
  }
  return out.sort((x, y) => x.key - y.key);
}

interface Out {
  events: UsageEvent[];
  late: string[];
}

function simulate(chunks: number, ops: readonly number[], crashAt: ReadonlySet<number>): Out {
  const log = new Map<string, DriverRecord[]>([
    [tp(POD, 0), []],
    [tp(BW, 0), []],
  ]);
  const produce = (k: number) => {
    for (const r of chunkRecords(k)) {
      const list = log.get(tp(r.topic, 0))!;
      list.push({ topic: r.topic, partition: 0, offset: list.length, decoded: r.decoded });
    }
  };
  const committed = new Map<string, Committed>();
  const out: Out = { events: [], late: [] };
  const cursor = new Map<string, number>();
  let now = 0;
  let driver!: AggregatorDriver;
  const restore = () => {
    driver = new AggregatorDriver(settings);
    const c = [POD, BW].map((t) => committed.get(tp(t, 0)) ?? { offset: null, metadata: null });
    driver.assign(0, pair(0, c[0]!, c[1]!), now);
    for (const t of [POD, BW]) cursor.set(t, committed.get(tp(t, 0))?.offset ?? 0);
  };
  const commit = (s: ReturnType<AggregatorDriver['tick']>) => {
    out.events.push(...s.events);
    out.late.push(...s.late.map((l) => `${l.topic}@${l.offset}`));
    for (const c of s.commits)
      committed.set(tp(c.topic, c.partition), { offset: c.offset, metadata: c.metadata });
  };
  restore();
  let produced = 0;
  let step = 0;
  for (const op of ops) {
    now += 100;
    const kind = op % 4;
    if (kind === 0 && produced < chunks) produce(produced++);
    else if (kind === 1) {
      // an admin poll of the log ends, then a tick
      for (const t of [POD, BW]) driver.observeEnd(t, 0, log.get(tp(t, 0))!.length);
      const s = driver.tick(0, now);
      if (crashAt.has(step++)) restore();
      else commit(s);
    } else {
      const topic = kind === 2 ? POD : BW;
      const records = log.get(tp(topic, 0))!;
      const from = cursor.get(topic)!;
      if (from >= records.length) continue;
      const batch = records.slice(from, from + 1 + (op % 9));
      driver.observeEnd(topic, 0, records.length);
      const s = driver.process(0, batch, now);
      cursor.set(topic, from + batch.length);
      if (crashAt.has(step++)) restore();
      else commit(s);
    }
  }
  // Drain: everything produced, read, and the flush chunk far ahead closes every data window.
  while (produced < chunks) produce(produced++);
  const flushAt = 1_000_000 + (chunks + 5) * 1000;
  for (const topic of [POD, BW]) {
    const list = log.get(tp(topic, 0))!;
    const value =
      topic === POD
        ? pod({ id: `flush-${topic}`, observedAtMs: flushAt, spanStartMs: flushAt - 250 })
        : bw({ id: `flush-${topic}`, observedAtMs: flushAt, spanStartMs: flushAt - 250 });
    list.push({
      topic,
      partition: 0,
      offset: list.length,
      decoded:
        topic === POD ? { kind: 'pod', value: value as never } : { kind: 'bandwidth', value: value as never },
    });
  }
  for (const topic of [POD, BW]) {
    const records = log.get(tp(topic, 0))!;
    const from = cursor.get(topic)!;
    driver.observeEnd(topic, 0, records.length);
    commit(driver.process(0, records.slice(from), now));
  }
  for (const t of [POD, BW]) driver.observeEnd(t, 0, log.get(tp(t, 0))!.length);
  commit(driver.tick(0, now));
  out.events = out.events.filter((e) => e.windowStartMs < flushAt - 1000);
  return out;
}

describe('live production with crashes (the kill test in pure form)', () => {
  it('emits the same events as a run that saw all data at once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 200 }),
        fc.array(fc.nat({ max: 200 }), { maxLength: 8 }),
        (chunks, ops, crashes) => {
          const plain = simulate(chunks, [], new Set());
          const faulty = simulate(chunks, ops, new Set(crashes));
          const plainCount = new Map(plain.events.map((e) => [e.id, e.sampleCount]));
          for (const e of faulty.events)
            expect(e.sampleCount, 'overcount').toBeLessThanOrEqual(plainCount.get(e.id) ?? 0);
          expect(faulty.late).toEqual([]);
          const byId = (es: UsageEvent[]) => new Map(es.map((e) => [e.id, e]));
          expect(byId(faulty.events).size).toBe(faulty.events.length);
          expect(byId(faulty.events)).toEqual(byId(plain.events));
        },
      ),
      { numRuns: 300 },
    );
  });
});
