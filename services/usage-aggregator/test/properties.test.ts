import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { USAGE_QUANTITIES, type UsageEvent } from '@gpu-meter/kit/contracts';
import { baseSettings, buildLog, run, scenarioArb, type Scenario } from './harness.js';

/** Ground truth computed independently of the service code: per (group, window), level × overlap. */
function groundTruth(distinct: Scenario['distinct'], windowMs: number) {
  const totals = new Map<string, Record<string, number>>();
  for (const s of distinct) {
    const levels: Record<string, number> =
      'gpus' in s
        ? {
            gpuAllocationSeconds: s.gpus,
            gpuMemoryAllocatedByteSeconds: s.gpuMemoryBytes,
            cpuCoreSeconds: s.cpuCores,
            memoryByteSeconds: s.memoryBytes,
          }
        : {
            nvlinkTxBytes: s.nvlinkTxBytesPerSecond,
            nvlinkRxBytes: s.nvlinkRxBytesPerSecond,
            pcieTxBytes: s.pcieTxBytesPerSecond,
            pcieRxBytes: s.pcieRxBytesPerSecond,
            gpuMemoryUsedByteSeconds: s.fbUsedBytes,
          };
    for (let w = Math.floor(s.spanStartMs / windowMs) * windowMs; w < s.spanEndMs; w += windowMs) {
      const overlap = Math.min(w + windowMs, s.spanEndMs) - Math.max(w, s.spanStartMs);
      const key = JSON.stringify([
        s.subject,
        s.clusterId,
        s.project,
        s.department,
        s.workloadType,
        s.gpuType,
        w,
      ]);
      const t = totals.get(key) ?? { sampleCount: 0, ms: 0 };
      t.sampleCount! += 1;
      for (const [q, level] of Object.entries(levels)) t[q] = (t[q] ?? 0) + level * overlap;
      totals.set(key, t);
    }
  }
  return totals;
}

const eventKey = (e: UsageEvent) =>
  JSON.stringify([
    e.subject,
    e.clusterId,
    e.project,
    e.department,
    e.workloadType,
    e.gpuType,
    e.windowStartMs,
  ]);

const close = (actual: number, expected: number) =>
  Math.abs(actual - expected) <= 1e-9 * Math.max(Math.abs(expected), 1e-300) || actual === expected;

describe('conservation under duplicates and reordering within grace', () => {
  it('emits, per group and window, the sum over distinct samples', () => {
    fc.assert(
      fc.property(
        scenarioArb({ late: false, poison: true }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 50 }),
        (scenario, choices) => {
          const result = run(buildLog(scenario.entries), 2, baseSettings, choices);
          const truth = groundTruth(scenario.distinct, baseSettings.windowMs);
          expect(result.late).toEqual([]);
          expect(new Set(result.events.map((e) => e.id)).size).toBe(result.events.length);
          expect(result.events.length).toBe(truth.size);
          for (const event of result.events) {
            const t = truth.get(eventKey(event));
            expect(t, eventKey(event)).toBeDefined();
            expect(event.sampleCount).toBe(t!.sampleCount);
            for (const q of USAGE_QUANTITIES) {
              const expected = (t![q] ?? 0) / 1000;
              expect(close(event[q], expected), `${q}: ${event[q]} vs ${expected}`).toBe(true);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is exact for integer levels (times in whole milliseconds)', () => {
    fc.assert(
      fc.property(
        scenarioArb({ late: false, poison: false, integerLevels: true }),
        fc.array(fc.nat(), { minLength: 1 }),
        (scenario, choices) => {
          const result = run(buildLog(scenario.entries), 2, baseSettings, choices);
          const truth = groundTruth(scenario.distinct, baseSettings.windowMs);
          for (const event of result.events) {
            const t = truth.get(eventKey(event))!;
            expect(event.gpuAllocationSeconds).toBe((t.gpuAllocationSeconds ?? 0) / 1000);
            expect(event.memoryByteSeconds).toBe((t.memoryByteSeconds ?? 0) / 1000);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

const crashArb = fc.array(fc.record({ atStep: fc.nat({ max: 60 }), beforeCommit: fc.boolean() }), {
  maxLength: 6,
});

function sameOutputs(a: ReturnType<typeof run>, b: ReturnType<typeof run>) {
  const byId = (events: UsageEvent[]) => new Map(events.map((e) => [e.id, e]));
  // Nothing twice: every id, late record and dead letter appears once.
  // (A duplicate of a late sample in correction mode re-emits its correction with the same id and values;
  // sinks dedupe on the id. Any other repeat is a double count.)
  for (const run of [a, b]) {
    const seen = new Map<string, UsageEvent>();
    for (const e of run.events) {
      if (seen.has(e.id)) {
        expect(e.correction).toBe(true);
        expect(e).toEqual(seen.get(e.id));
      }
      seen.set(e.id, e);
    }
  }
  expect(new Set(b.late).size).toBe(b.late.length);
  expect(new Set(b.deadLetters).size).toBe(b.deadLetters.length);
  expect(byId(b.events)).toEqual(byId(a.events));
  expect([...b.late].sort()).toEqual([...a.late].sort());
  expect([...b.deadLetters].sort()).toEqual([...a.deadLetters].sort());
}

describe('crash + restore from the last commit + replay', () => {
  for (const latePolicy of ['late-topic', 'correction'] as const) {
    it(`yields exactly the uninterrupted run's outputs (${latePolicy})`, () => {
      fc.assert(
        fc.property(
          scenarioArb({ late: true, poison: true }),
          fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
          fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
          crashArb,
          (scenario, choicesA, choicesB, crashes) => {
            const settings = { ...baseSettings, latePolicy };
            const log = buildLog(scenario.entries);
            const plain = run(log, 2, settings, choicesA);
            const faulty = run(log, 2, settings, choicesB, crashes);
            sameOutputs(plain, faulty);
          },
        ),
        { numRuns: 400 },
      );
    });
  }

  it('restores identically after a crash at every single step', () => {
    fc.assert(
      fc.property(
        scenarioArb({ late: true, poison: false }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 20 }),
        (scenario, choices) => {
          const log = buildLog(scenario.entries);
          const plain = run(log, 2, baseSettings, choices);
          const crashes = Array.from({ length: 200 }, (_, atStep) => ({
            atStep,
            beforeCommit: atStep % 2 === 0,
          }));
          sameOutputs(plain, run(log, 2, baseSettings, choices, crashes));
        },
      ),
      { numRuns: 100 },
    );
  });
});
