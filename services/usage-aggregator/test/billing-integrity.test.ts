import { describe, expect, it } from 'vitest';
import { driverSettings, loadConfig } from '../src/config.js';
import { AggregatorDriver, type DriverRecord, type DriverSettings } from '../src/driver.js';
import { encodeOffsetMetadata } from '../src/offset-metadata.js';
import { baseSettings, BW, bw, pod, POD, pair } from './harness.js';

/**
 * Issue 12's everyday operations, driven through the pure driver: each test names the case it pins. The
 * records carry the broker's timestamp (`timestampMs`) as the worker passes it.
 */
const minimal = { KAFKA_BROKERS: 'k:9092', SCHEMA_REGISTRY_URL: 'http://r:8081' };
const nothing = { offset: null, metadata: null };

/** A pod (or bandwidth) sample observed at t, covering the interval before it, as the worker hands it over. */
function rec(
  kind: 'pod' | 'bandwidth',
  offset: number,
  id: string,
  t: number,
  interval: number,
  timestampMs = t,
): DriverRecord {
  const common = { id, observedAtMs: t, spanStartMs: t - interval };
  return {
    topic: kind === 'pod' ? POD : BW,
    partition: 0,
    offset,
    timestampMs,
    decoded: kind === 'pod' ? { kind, value: pod(common) } : { kind, value: bw(common) },
  };
}
const podRec = (...args: [number, string, number, number, number?]) => rec('pod', ...args);
const bwRec = (...args: [number, string, number, number, number?]) => rec('bandwidth', ...args);

const gpuSeconds = (events: Array<{ gpuAllocationSeconds: number }>) =>
  events.reduce((sum, e) => sum + e.gpuAllocationSeconds, 0);

describe('case 1: a collector restart longer than grace is billed (defaults)', () => {
  it('bills every backfilled grid point of a 3-minute runai-collector outage with the default config', () => {
    const settings = driverSettings({ ...loadConfig(minimal), tasks: 2 });
    const interval = settings.samplingIntervalMs;
    const d = new AggregatorDriver({ ...settings, podAllocationsTopic: POD, bandwidthSamplesTopic: BW });
    d.assign(0, pair(0, nothing, nothing), 0);
    const events = [];
    let podOffset = 0;
    let bwOffset = 0;
    const startMs = 600_000;
    const outage = { from: startMs + 120_000, to: startMs + 300_000 };
    const endMs = startMs + 600_000;
    const backfill: number[] = [];
    // Wall clock = grid time + 1 s (delivery delay); both collectors deliver every grid point, except the
    // pod collector during its outage, which it backfills when it comes back.
    for (let t = startMs + interval; t <= endMs; t += interval) {
      const now = t + 1000;
      if (t >= outage.from && t < outage.to) backfill.push(t);
      else {
        if (t >= outage.to && backfill.length > 0) {
          const records = backfill.splice(0).map((b) => podRec(podOffset++, `p${b}`, b, interval, now));
          d.observeEnd(POD, 0, podOffset);
          events.push(...d.process(0, records, now).events);
        }
        d.observeEnd(POD, 0, podOffset + 1);
        events.push(...d.process(0, [podRec(podOffset++, `p${t}`, t, interval, now)], now).events);
      }
      d.observeEnd(BW, 0, bwOffset + 1);
      events.push(...d.process(0, [bwRec(bwOffset++, `b${t}`, t, interval, now)], now).events);
      events.push(...d.tick(0, now).events);
    }
    for (let now = endMs + 1000; now <= endMs + 120_000; now += 1000) events.push(...d.tick(0, now).events);
    // One GPU all along: every second of the ten minutes is billed, late or not.
    expect(gpuSeconds(events)).toBe((endMs - startMs) / 1000);
  });
});

describe('case 3: time that cannot be poisoned', () => {
  const settings: DriverSettings = { ...baseSettings, latePolicy: 'correction', maxClockAheadMs: 1000 };

  it('dead-letters a sample dated a day ahead of the broker clock, and it does not move stream time', () => {
    const d = new AggregatorDriver(settings);
    d.assign(0, pair(0, nothing, nothing), -settings.idleAdvanceMs);
    d.observeEnd(BW, 0, 0);
    const day = 86_400_000;
    const first = d.process(
      0,
      [podRec(0, 'a', 1250, 250), podRec(1, 'future', 1250 + day, 250, 1300), podRec(2, 'b', 1500, 250)],
      0,
    );
    expect(first.deadLetters).toEqual([
      expect.objectContaining({ offset: 1, code: 'GPUM_VALIDATION_FAILED' }),
    ]);
    expect(first.deadLetters[0]!.reason).toMatch(/ahead of the broker's clock/);
    expect(first.events).toEqual([]); // stream time is still 1500, not a day ahead
    expect(d.task(0)!.inputs[0]!.wm).toBe(1500);
    const rest = d.process(0, [podRec(3, 'c', 1750, 250), podRec(4, 'd', 2750, 250)], 0);
    expect(rest.late).toEqual([]);
    expect(gpuSeconds(rest.events)).toBe(0.75); // a, b and c: window [1000,2000) billed in full
  });

  it('accepts a sample up to the tolerance ahead of the broker clock', () => {
    const d = new AggregatorDriver(settings);
    d.assign(0, pair(0, nothing, nothing), -settings.idleAdvanceMs);
    const step = d.process(0, [podRec(0, 'a', 1250, 250, 250)], 0);
    expect(step.deadLetters).toEqual([]);
  });

  it('dead-letters a sample whose span does not lie in the interval before its observation time', () => {
    const d = new AggregatorDriver(settings);
    d.assign(0, pair(0, nothing, nothing), -settings.idleAdvanceMs);
    const value = (o: { spanStartMs: number; spanEndMs: number }) =>
      pod({ id: `s${o.spanStartMs}-${o.spanEndMs}`, observedAtMs: 2000, ...o });
    const records: DriverRecord[] = [
      { spanStartMs: 1000, spanEndMs: 1500 }, // starts a whole interval too early
      { spanStartMs: 1750, spanEndMs: 2250 }, // ends after its observation time
      { spanStartMs: 1750, spanEndMs: 2000 }, // fine
    ].map((o, offset) => ({
      topic: POD,
      partition: 0,
      offset,
      timestampMs: 2000,
      decoded: { kind: 'pod', value: value(o) },
    }));
    const step = d.process(0, records, 0);
    expect(step.deadLetters.map((l) => l.offset)).toEqual([0, 1]);
    expect(step.deadLetters[0]!.reason).toMatch(/interval/);
  });

  it('refuses a sampling interval that does not divide the window, naming the variables', () => {
    expect(() => loadConfig({ ...minimal, WINDOW_MS: '60000', SAMPLING_INTERVAL_MS: '25000' })).toThrow(
      /SAMPLING_INTERVAL_MS/,
    );
    expect(
      loadConfig({ ...minimal, WINDOW_MS: '60000', SAMPLING_INTERVAL_MS: '20000' }).samplingIntervalMs,
    ).toBe(20_000);
  });
});

describe('case 5: restore refuses to guess', () => {
  it('stops the task on committed offsets without valid metadata instead of re-emitting windows', () => {
    const d = new AggregatorDriver(baseSettings);
    for (const metadata of [null, '', 'reset by kafka-consumer-groups', '{"v":99}']) {
      expect(() => d.assign(0, pair(0, { offset: 42, metadata }, nothing), 0)).toThrow(
        /GPUM_OFFSET_METADATA_INVALID.*pods:0.*offset 42/,
      );
    }
    const valid = encodeOffsetMetadata({ wm: 1000, closed: 1000, through: 42 });
    expect(() => d.assign(0, pair(0, { offset: 42, metadata: valid }, nothing), 0)).not.toThrow();
  });
});

describe('case 6: late duplicates are recognised for at least 24 hours (defaults)', () => {
  it('bills a duplicate that arrives an hour after its window closed once, in correction mode', () => {
    const config = loadConfig(minimal);
    expect(config.latePolicy).toBe('correction');
    const settings = {
      ...driverSettings({ ...config, tasks: 2 }),
      podAllocationsTopic: POD,
      bandwidthSamplesTopic: BW,
    };
    const interval = settings.samplingIntervalMs;
    const d = new AggregatorDriver(settings);
    d.assign(0, pair(0, nothing, nothing), -settings.idleAdvanceMs);
    d.observeEnd(BW, 0, 0);
    const events = [];
    let offset = 0;
    // One pod, sampled for two hours; replica B was cut off for an hour and flushes its copy of the first
    // grid point (same id) afterwards.
    for (let t = interval; t <= 7_200_000; t += interval) {
      d.observeEnd(POD, 0, offset + 1);
      events.push(...d.process(0, [podRec(offset++, `p${t}`, t, interval)], t).events);
    }
    d.observeEnd(POD, 0, offset + 1);
    const late = d.process(0, [podRec(offset++, `p${interval}`, interval, interval, 7_200_000)], 7_200_000);
    expect(late.dedupeHits).toBe(1);
    expect(late.events).toEqual([]);
    // Dedupe memory stays small: a few bytes per grid point, not a map entry per id.
    expect(d.task(0)!.dedupeBytes / d.task(0)!.dedupeSize).toBeLessThan(40);
  });
});

describe('case 4: partitions added at run time neither drop nor split usage', () => {
  it('counts a sample once when its two copies land in partitions q and q + tasks (before/after expansion)', () => {
    // Three tasks; the raw topics grew from 3 to 6 partitions. One collector replica already routes pod
    // uid X by the new count (partition 3), the other still by the old one (partition 0).
    const settings: DriverSettings = { ...baseSettings, tasks: 3, latePolicy: 'correction' };
    const d = new AggregatorDriver(settings);
    const inputs = [0, 3].flatMap((partition) => [
      { topic: POD, partition, committed: nothing },
      { topic: BW, partition, committed: nothing },
    ]);
    d.assign(0, inputs, -settings.idleAdvanceMs);
    for (const partition of [0, 3]) d.observeEnd(BW, partition, 0);
    const copy = (partition: number, offset: number, id: string, t: number): DriverRecord => ({
      ...podRec(offset, id, t, 250),
      partition,
    });
    const events = [
      ...d.process(0, [copy(0, 0, 'x1', 1250), copy(0, 1, 'x2', 1500)], 0).events,
      ...d.process(0, [copy(3, 0, 'x2', 1500), copy(3, 1, 'x3', 1750), copy(3, 2, 'x4', 3000)], 0).events,
      ...d.process(0, [copy(0, 2, 'x3', 1750), copy(0, 3, 'x4', 3000)], 0).events,
    ];
    d.observeEnd(POD, 0, 4);
    d.observeEnd(POD, 3, 3);
    events.push(...d.tick(0, 1e15).events);
    expect(gpuSeconds(events)).toBe(1); // x1..x4, 0.25 s each, once
    // Partition 3 is not task 3's: the driver refuses to mix tasks.
    expect(() => d.assign(3, [{ topic: POD, partition: 3, committed: nothing }], 0)).toThrow(/not an input/);
  });

  it('restores a task with a new, uncommitted partition beside its committed ones', () => {
    const settings: DriverSettings = { ...baseSettings, tasks: 3 };
    const metadata = encodeOffsetMetadata({ wm: 1000, closed: 1000, through: 5, tasks: 3 });
    const d = new AggregatorDriver(settings);
    d.assign(
      0,
      [
        { topic: POD, partition: 0, committed: { offset: 5, metadata } },
        { topic: POD, partition: 3, committed: nothing },
      ],
      0,
    );
    expect(d.task(0)!.inputs.map((i) => [i.partition, i.position])).toEqual([
      [0, 5],
      [3, null],
    ]);
  });

  it('refuses to restore offsets committed under another TASKS, naming it', () => {
    const metadata = encodeOffsetMetadata({ wm: 1000, closed: 1000, through: 5, tasks: 6 });
    const d = new AggregatorDriver({ ...baseSettings, tasks: 3 });
    expect(() => d.assign(0, [{ topic: POD, partition: 0, committed: { offset: 5, metadata } }], 0)).toThrow(
      /TASKS: is 3, but pods:0 was committed with 6 tasks/,
    );
  });
});

describe('case 2: copies of one observation that disagree are counted once', () => {
  const view = (observer: string, holders: Array<[string, number]>, offset0: number): DriverRecord[] =>
    holders.map(([pod, share], i) => ({
      topic: BW,
      partition: 0,
      offset: offset0 + i,
      decoded: {
        kind: 'bandwidth',
        value: bw({
          id: `gpu-1/${pod}/1250`, // the collector's id names GPU, holder and grid point
          observedAtMs: 1250,
          spanStartMs: 1000,
          podUid: pod,
          share,
          observer,
          fbUsedBytes: 1000 * share,
        }),
      },
    }));
  const usedByteSeconds = (order: 'a-first' | 'b-first') => {
    const d = new AggregatorDriver(baseSettings);
    d.assign(0, pair(0, nothing, nothing), -baseSettings.idleAdvanceMs);
    d.observeEnd(POD, 0, 0);
    // Replica A saw pod p1 alone on the GPU; replica B saw p1 and p2 sharing it (a handover at the grid
    // point). B's p1 sample has A's id but half the share.
    const a = view('replica-a', [['p1', 1]], 0);
    const b = view(
      'replica-b',
      [
        ['p1', 0.5],
        ['p2', 0.5],
      ],
      1,
    );
    const records = order === 'a-first' ? [...a, ...b] : [...b, ...a].map((r, i) => ({ ...r, offset: i }));
    d.observeEnd(BW, 0, 3);
    const events = [...d.process(0, records, 0).events, ...d.tick(0, 1e15).events];
    return events.reduce((sum, e) => sum + e.gpuMemoryUsedByteSeconds, 0);
  };

  it("bills one replica's view of a GPU's holders, never the sum of two views", () => {
    expect(usedByteSeconds('a-first')).toBe(250); // 1000 B × 0.25 s, A's view
    expect(usedByteSeconds('b-first')).toBe(250); // B's view: 500 B + 500 B for 0.25 s
  });
});
