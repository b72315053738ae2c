import { describe, expect, it } from 'vitest';
import { AggregatorDriver, type DriverRecord } from '../src/driver.js';
import { usageEventId } from '../src/groups.js';
import { decodeOffsetMetadata } from '../src/offset-metadata.js';
import { baseSettings, BW, bw, pod, POD, pair } from './harness.js';

const rec = (offset: number, value: ReturnType<typeof pod>): DriverRecord => ({
  topic: POD,
  partition: 0,
  offset,
  decoded: { kind: 'pod', value },
});
const sample = (id: string, t: number, len = 250) => pod({ id, observedAtMs: t, spanStartMs: t - len });

function fresh(settings = baseSettings) {
  const driver = new AggregatorDriver(settings);
  // Assigned long ago: an input without records (bandwidth here) is quiet and does not hold stream time.
  driver.assign(
    0,
    pair(0, { offset: null, metadata: null }, { offset: null, metadata: null }),
    -settings.idleAdvanceMs,
  );
  return driver;
}

describe('task', () => {
  it('closes a window once stream time passes end + grace, with a deterministic id', () => {
    const d = fresh();
    d.observeEnd(BW, 0, 0);
    expect(d.process(0, [rec(0, sample('a', 1250)), rec(1, sample('b', 1500))], 0).events).toEqual([]);
    expect(d.process(0, [rec(2, sample('c', 2400))], 0).events).toEqual([]); // 2400 < 2000 + 500
    const closed = d.process(0, [rec(3, sample('d', 2500))], 0).events; // 2500 >= 2000 + 500
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({
      windowStartMs: 1000,
      windowEndMs: 2000,
      sampleCount: 2,
      gpuAllocationSeconds: 0.5,
    });
    const dims = {
      subject: 'acme',
      clusterId: 'c1',
      project: 'a',
      department: '',
      workloadType: 'Training',
      gpuType: 'A100',
    };
    expect(closed[0]!.id).toBe(usageEventId(dims, 1000, 2000, 0));
  });

  it('counts a duplicate once and reports a sample for a closed window as late', () => {
    const d = fresh();
    d.observeEnd(BW, 0, 0);
    const s1 = d.process(
      0,
      [rec(0, sample('a', 1250)), rec(1, sample('a', 1250)), rec(2, sample('z', 3000))],
      0,
    );
    expect(s1.dedupeHits).toBe(1);
    expect(s1.events[0]).toMatchObject({ sampleCount: 1, gpuAllocationSeconds: 0.25 });
    const late = d.process(0, [rec(3, sample('b', 1500))], 0);
    expect(late.late).toEqual([expect.objectContaining({ topic: POD, partition: 0, offset: 3 })]);
    expect(late.late[0]!.reason).toContain('[1000,2000)');
  });

  it('turns a late sample into a correction event with its own id in correction mode', () => {
    const d = fresh({ ...baseSettings, latePolicy: 'correction' });
    d.observeEnd(BW, 0, 0);
    const first = d.process(0, [rec(0, sample('a', 1250)), rec(1, sample('z', 3000))], 0).events[0]!;
    const correction = d.process(0, [rec(2, sample('b', 1500))], 0).events;
    expect(correction).toHaveLength(1);
    expect(correction[0]).toMatchObject({ correction: true, windowStartMs: 1000, sampleCount: 1 });
    expect(correction[0]!.id).not.toBe(first.id);
  });

  it('dead-letters invalid samples and keeps going', () => {
    const d = fresh();
    const step = d.process(
      0,
      [rec(0, pod({ id: 'a', observedAtMs: 10, spanStartMs: 10 })), rec(1, sample('b', 1250))],
      0,
    );
    expect(step.deadLetters).toEqual([
      expect.objectContaining({ offset: 0, code: 'GPUM_VALIDATION_FAILED' }),
    ]);
    expect(d.task(0)!.openWindows).toBe(1);
  });

  it('advances stream time by wall clock once every input is caught up and idle', () => {
    const d = fresh();
    d.process(0, [rec(0, sample('a', 1250))], 100);
    d.observeEnd(POD, 0, 1);
    d.observeEnd(BW, 0, 0);
    expect(d.tick(0, 100 + baseSettings.idleAdvanceMs - 1).events).toEqual([]); // max wm 1250 only
    expect(d.tick(0, 100 + baseSettings.idleAdvanceMs).events).toHaveLength(1);
  });

  it('lets a read-but-recently-active input hold stream time (its known end may be stale)', () => {
    const d = new AggregatorDriver(baseSettings);
    d.assign(0, pair(0, { offset: null, metadata: null }, { offset: null, metadata: null }), 0);
    d.observeEnd(BW, 0, 0); // "caught up" on bandwidth, but only as far as we know
    expect(d.process(0, [rec(0, sample('a', 1250)), rec(1, sample('b', 9000))], 0).events).toEqual([]);
    expect(d.tick(0, baseSettings.idleAdvanceMs - 1).events).toEqual([]);
    d.observeEnd(POD, 0, 2);
    expect(d.tick(0, baseSettings.idleAdvanceMs).events).toHaveLength(2); // both quiet long enough
  });

  it('counts no quiet time across a gap in contact with Kafka: after an outage both inputs hold again', () => {
    const bwRec = (offset: number, id: string, t: number): DriverRecord => ({
      topic: BW,
      partition: 0,
      offset,
      decoded: { kind: 'bandwidth', value: bw({ id, observedAtMs: t, spanStartMs: t - 250 }) },
    });
    const run = (contactGapMs: number | undefined) => {
      const d = new AggregatorDriver({ ...baseSettings, contactGapMs });
      const nothing = { offset: null, metadata: null };
      d.assign(0, pair(0, nothing, nothing), 0);
      d.observeEnd(POD, 0, 1);
      d.observeEnd(BW, 0, 1);
      d.process(0, [rec(0, sample('a', 1250))], 1000);
      d.process(0, [bwRec(0, 'b', 1250)], 1000);
      // Kafka unreachable from wall clock 1 s to 30 s. Then the pod input delivers first, far ahead.
      d.observeEnd(POD, 0, 2);
      const first = d.process(0, [rec(1, sample('c', 5000))], 30_000);
      // The bandwidth collector's sample held up by the outage arrives a second later.
      d.observeEnd(BW, 0, 2);
      const held = d.process(0, [bwRec(1, 'd', 1500)], 31_000);
      const ticks = [];
      for (let now = 32_000; now <= 42_000; now += 1000) ticks.push(...d.tick(0, now).events);
      return { first, held, events: [...first.events, ...held.events, ...ticks] };
    };
    const withGap = run(2000);
    expect(withGap.first.events).toEqual([]); // the bandwidth input holds: its quiet time restarted at 30 s
    expect(withGap.held.late).toEqual([]);
    const window = withGap.events.find((e) => e.windowStartMs === 1000)!;
    expect(window.sampleCount).toBe(3); // a, b and the held-up d
    // Without the rule the outage counts as quiet: the window closes at 30 s and d is late.
    const withoutGap = run(undefined);
    expect(withoutGap.first.events.find((e) => e.windowStartMs === 1000)!.sampleCount).toBe(2);
    expect(withoutGap.held.late).toHaveLength(1);
  });

  it('adds up the quiet time seen between stalls: repeated stalls do not hold a quiet input forever', () => {
    // A loaded machine (issue 13) stalls the whole stack for longer than the contact gap every few seconds.
    // An input with no records (an empty partition) must still stop holding after IDLE_ADVANCE_MS of quiet
    // seen in the awake stretches; restarting its count at every stall kept every window open.
    const d = new AggregatorDriver({ ...baseSettings, contactGapMs: 2000 });
    const nothing = { offset: null, metadata: null };
    d.assign(0, pair(0, nothing, nothing), 0);
    d.observeEnd(BW, 0, 0); // read up, and nothing will ever come
    const closedAt: number[] = [];
    let offset = 0;
    let observed = 250;
    // Cycles of 4 contacts a second apart, then 6 s without one; the pod backlog arrives on waking.
    for (let cycle = 0; cycle < 7; cycle++) {
      for (let second = 0; second < 4; second++) {
        const now = cycle * 9000 + second * 1000 + 1000;
        const batch = [];
        for (; observed <= now; observed += 250) batch.push(rec(offset++, sample(`s${observed}`, observed)));
        d.observeEnd(POD, 0, offset);
        const step = d.process(0, batch, now);
        if (step.events.some((e) => e.windowStartMs === 1000)) closedAt.push(now);
      }
    }
    // Quiet seen: 4 s up to the first stall (from the assignment at 0), then 3 s between the contacts of
    // each awake stretch, so the 10 s are reached at the last contact of the third one (wall 22 s).
    expect(closedAt).toEqual([22_000]);
  });

  it("leaves an outage out of an input's quiet time but keeps the quiet seen before it", () => {
    const d = new AggregatorDriver({ ...baseSettings, contactGapMs: 2000 });
    const nothing = { offset: null, metadata: null };
    d.assign(0, pair(0, nothing, nothing), 0);
    d.observeEnd(BW, 0, 0);
    d.observeEnd(POD, 0, 1);
    d.process(0, [rec(0, sample('a', 1250))], 1000);
    for (let now = 2000; now <= 6000; now += 1000) d.tick(0, now); // 5 s of quiet seen after the pod sample
    // Kafka unreachable from 6 s to 26 s: 20 s that are not quiet. 5 s more of quiet are still needed, so
    // the window closes at 31 s: not at 26 s (the outage counted) nor at 36 s (the count restarted).
    const closedAt: number[] = [];
    for (let now = 26_000; now <= 40_000; now += 1000)
      if (d.tick(0, now).events.some((e) => e.windowStartMs === 1000)) closedAt.push(now);
    expect(closedAt).toEqual([31_000]);
  });

  it('waits for an input that is behind (min watermark) even if the other is far ahead', () => {
    const d = fresh();
    d.observeEnd(POD, 0, 10);
    d.observeEnd(BW, 0, 10);
    d.process(0, [rec(0, sample('a', 1250)), rec(1, sample('b', 9000))], 0);
    expect(d.task(0)!.streamTime(0)).toBeNull(); // bandwidth input is behind and has no watermark yet
  });

  it('commits no further than the first record of an open window, with replay metadata', () => {
    const d = fresh({ ...baseSettings, dedupeRetentionMs: 0 });
    d.observeEnd(BW, 0, 0);
    const step = d.process(
      0,
      [rec(0, sample('a', 1250)), rec(1, sample('b', 2250)), rec(2, sample('c', 2600))],
      0,
    );
    // window [1000,2000) closed at wm 2600; [2000,3000) is open from offset 1 on.
    const pods = step.commits.find((c) => c.topic === POD)!;
    expect(pods.offset).toBe(1);
    expect(decodeOffsetMetadata(pods.metadata)).toEqual({ wm: 1250, closed: 2000, through: 3, tasks: 2 });
  });

  it('keeps a live dedupe id pinned so a restart still recognises its duplicates', () => {
    const d = fresh({ ...baseSettings, dedupeRetentionMs: 1000 });
    d.observeEnd(BW, 0, 0);
    const step = d.process(
      0,
      [rec(0, sample('a', 1250)), rec(1, sample('b', 2250)), rec(2, sample('c', 2600))],
      0,
    );
    expect(step.commits.find((c) => c.topic === POD)!.offset).toBe(0); // 'a' is live until wm 3500
    const restored = new AggregatorDriver({ ...baseSettings, dedupeRetentionMs: 1000 });
    restored.assign(
      0,
      pair(0, { offset: 0, metadata: step.commits[0]!.metadata }, { offset: null, metadata: null }),
      -baseSettings.idleAdvanceMs,
    );
    const replay = restored.process(
      0,
      [
        rec(0, sample('a', 1250)),
        rec(1, sample('b', 2250)),
        rec(2, sample('c', 2600)),
        rec(3, sample('a', 1250)),
      ],
      0,
    );
    expect(replay).toMatchObject({ replayed: 3, dedupeHits: 1, late: [], events: [] });
  });
});
