import fc from 'fast-check';
import {
  deterministicId,
  type BandwidthSample,
  type PodAllocationSample,
  type UsageEvent,
} from '@gpu-meter/kit/contracts';
import {
  AggregatorDriver,
  type Committed,
  type DriverRecord,
  type DriverSettings,
  type TaskInput,
} from '../src/driver.js';

/** Pure simulation of the service around the driver: a log per topic-partition, a consumer, commits, crashes. */
export const POD = 'pods';
export const BW = 'bandwidth';

/** Task p's inputs when the topics have no more partitions than tasks: partition p of each. */
export function pair(p: number, pods: Committed, bandwidth: Committed, topics = [POD, BW]): TaskInput[] {
  return [
    { topic: topics[0]!, partition: p, committed: pods },
    { topic: topics[1]!, partition: p, committed: bandwidth },
  ];
}

export const baseSettings: DriverSettings = {
  tasks: 2,
  windowMs: 1000,
  graceMs: 500,
  idleAdvanceMs: 10_000,
  latePolicy: 'late-topic',
  dedupeRetentionMs: 700,
  podAllocationsTopic: POD,
  bandwidthSamplesTopic: BW,
  maxSampleSpanMs: 5000,
  samplingIntervalMs: 250,
  maxClockAheadMs: 1000,
};

export function pod(
  o: Partial<PodAllocationSample> & { id: string; observedAtMs: number; spanStartMs: number },
) {
  return {
    clusterId: 'c1',
    spanEndMs: o.observedAtMs,
    podUid: 'uid',
    podName: 'p',
    namespace: 'runai-a',
    nodeName: '',
    subject: 'acme',
    project: 'a',
    department: '',
    queue: '',
    workloadType: 'Training',
    user: '',
    workloadId: '',
    gpuType: 'A100',
    migProfile: null,
    gpus: 1,
    gpuMemoryBytes: 1000,
    cpuCores: 2,
    memoryBytes: 4096,
    ...o,
  } satisfies PodAllocationSample;
}

export function bw(o: Partial<BandwidthSample> & { id: string; observedAtMs: number; spanStartMs: number }) {
  return {
    clusterId: 'c1',
    spanEndMs: o.observedAtMs,
    gpuUuid: 'GPU-1',
    gpuIndex: 0,
    migInstanceId: null,
    migProfile: null,
    hostname: 'h',
    gpuType: 'A100',
    podUid: 'uid',
    podName: 'p',
    namespace: 'runai-a',
    subject: 'acme',
    project: 'a',
    department: '',
    workloadType: 'Training',
    share: 1,
    observer: '',
    nvlinkTxBytesPerSecond: 100.5,
    nvlinkRxBytesPerSecond: 7,
    pcieTxBytesPerSecond: 0.25,
    pcieRxBytesPerSecond: 3,
    fbUsedBytes: 2 ** 30,
    ...o,
  } satisfies BandwidthSample;
}

/** A log: per topic-partition, the decoded values in offset order. */
export type Log = Map<string, DriverRecord[]>;
export const tp = (topic: string, partition: number) => `${topic}:${partition}`;

export function buildLog(
  entries: ReadonlyArray<{ topic: string; partition: number; decoded: DriverRecord['decoded'] }>,
): Log {
  const log: Log = new Map();
  for (const e of entries) {
    const list = log.get(tp(e.topic, e.partition)) ?? [];
    list.push({ topic: e.topic, partition: e.partition, offset: list.length, decoded: e.decoded });
    log.set(tp(e.topic, e.partition), list);
  }
  return log;
}

export interface RunResult {
  events: UsageEvent[];
  late: string[];
  deadLetters: string[];
  dedupeHits: number;
}

/**
 * Runs the log to the end. `choices` drives batching and interleaving (which input next, how many
 * records); a crash discards the driver (and, for 'before-commit', the step's outputs) and restores from
 * the committed offsets + metadata, like a SIGKILL and restart. Only committed steps count as output.
 */
export function run(
  log: Log,
  partitions: number,
  settings: DriverSettings,
  choices: readonly number[],
  crashes: ReadonlyArray<{ atStep: number; beforeCommit: boolean }> = [],
): RunResult {
  const committed = new Map<string, Committed>();
  const result: RunResult = { events: [], late: [], deadLetters: [], dedupeHits: 0 };
  let driver = new AggregatorDriver(settings);
  const topics = [settings.podAllocationsTopic, settings.bandwidthSamplesTopic];
  const cursor = new Map<string, number>();
  const restore = () => {
    driver = new AggregatorDriver(settings);
    for (let p = 0; p < partitions; p++) {
      const c = topics.map((t) => committed.get(tp(t, p)) ?? { offset: null, metadata: null });
      driver.assign(p, pair(p, c[0]!, c[1]!), 0);
      for (const t of topics) {
        cursor.set(tp(t, p), committed.get(tp(t, p))?.offset ?? 0);
        driver.observeEnd(t, p, log.get(tp(t, p))?.length ?? 0);
      }
    }
  };
  restore();
  let step = 0;
  let choice = 0;
  const next = () => choices[choice++ % choices.length]!;
  const commit = (s: ReturnType<AggregatorDriver['process']>) => {
    if (process.env.UA_TRACE)
      console.log('commit', s.late.length, s.events.length, JSON.stringify(s.commits));
    result.events.push(...s.events);
    result.late.push(...s.late.map((l) => `${l.topic}:${l.partition}@${l.offset} ${l.reason}`));
    result.deadLetters.push(...s.deadLetters.map((d) => `${d.topic}:${d.partition}@${d.offset} ${d.reason}`));
    result.dedupeHits += s.dedupeHits;
    for (const c of s.commits)
      committed.set(tp(c.topic, c.partition), { offset: c.offset, metadata: c.metadata });
  };
  for (;;) {
    const pending = [...log.keys()].filter((k) => (cursor.get(k) ?? 0) < log.get(k)!.length);
    if (pending.length === 0) break;
    const key = pending[next() % pending.length]!;
    const records = log.get(key)!;
    const from = cursor.get(key) ?? 0;
    const batch = records.slice(from, from + 1 + (next() % 7));
    const s = driver.process(batch[0]!.partition, batch, 0);
    cursor.set(key, from + batch.length);
    const crash = crashes.find((c) => c.atStep === step);
    step += 1;
    if (crash?.beforeCommit) {
      restore();
      continue;
    }
    commit(s);
    if (crash) restore();
  }
  for (let p = 0; p < partitions; p++) commit(driver.tick(p, 1e15));
  return result;
}

/** Random scenario: pod and bandwidth samples on a 250 ms grid, duplicates, poison, optional late ones. */
export interface Scenario {
  entries: Array<{ topic: string; partition: number; decoded: DriverRecord['decoded'] }>;
  distinct: Array<PodAllocationSample | BandwidthSample>;
}

const subjects = ['acme', 'globex', 'initech'];

export const scenarioArb = (options: { late: boolean; poison: boolean; integerLevels?: boolean }) =>
  fc
    .array(
      fc.record({
        kind: fc.constantFrom('pod', 'bandwidth'),
        subject: fc.integer({ min: 0, max: 2 }),
        slot: fc.integer({ min: 0, max: 40 }),
        len: fc.integer({ min: 1, max: 250 }),
        jitter: fc.integer({ min: 0, max: 249 }),
        dupJitters: fc.array(fc.integer({ min: 0, max: 249 }), { maxLength: 2 }),
        level: options.integerLevels
          ? fc.integer({ min: 0, max: 8 })
          : fc.double({ min: 0, max: 1e6, noNaN: true }),
        gpuType: fc.constantFrom('A100', 'H100'),
        lateBy: options.late ? fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 4000 })) : fc.constant(0),
        poison: options.poison ? fc.integer({ min: 0, max: 9 }).map((n) => n === 0) : fc.constant(false),
      }),
      { minLength: 1, maxLength: 120 },
    )
    .map((specs) => {
      const placed: Array<{
        key: number;
        topic: string;
        partition: number;
        decoded: DriverRecord['decoded'];
      }> = [];
      const distinct: Scenario['distinct'] = [];
      const seen = new Set<string>();
      specs.forEach((s, n) => {
        const subject = subjects[s.subject]!;
        const t = 1_000_000 + s.slot * 250;
        const id = deterministicId(s.kind, subject, s.slot, s.gpuType, n % 3);
        const common = { id, subject, observedAtMs: t, spanStartMs: t - s.len, gpuType: s.gpuType };
        const value =
          s.kind === 'pod'
            ? pod({ ...common, gpus: s.level, cpuCores: s.level / 4 })
            : bw({ ...common, nvlinkTxBytesPerSecond: s.level, fbUsedBytes: s.level * 3 });
        // Only the first spec with an id defines the sample; later specs with that id act as duplicates.
        const first = !seen.has(id);
        seen.add(id);
        const topic = s.kind === 'pod' ? POD : BW;
        const partition = s.subject % 2;
        const decoded = (
          s.kind === 'pod' ? { kind: 'pod', value } : { kind: 'bandwidth', value }
        ) as DriverRecord['decoded'];
        if (first) distinct.push(value);
        const original = first ? value : undefined;
        for (const j of [s.jitter, ...s.dupJitters]) {
          if (!original) break;
          placed.push({ key: t + j + s.lateBy, topic, partition, decoded });
        }
        if (s.poison)
          placed.push({
            key: t + s.jitter,
            topic,
            partition,
            decoded: { kind: 'poison', code: 'GPUM_DECODE_FAILED', reason: 'bad magic byte 7' },
          });
      });
      placed.sort((a, b) => a.key - b.key);
      return {
        entries: placed.map(({ topic, partition, decoded }) => ({ topic, partition, decoded })),
        distinct,
      } as Scenario;
    });
