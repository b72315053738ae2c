import { ConfigError } from '@gpu-meter/kit/contracts';
import { describe, expect, it } from 'vitest';
import { taskAssignment } from '../src/assigner.js';
import { contactGapMs, loadConfig } from '../src/config.js';
import { decideTasks } from '../src/startup.js';
import { encodeOffsetMetadata } from '../src/offset-metadata.js';

const minimal = { KAFKA_BROKERS: 'k:9092', SCHEMA_REGISTRY_URL: 'http://r:8081' };

describe('config', () => {
  it('has the documented defaults; idle advance defaults to grace', () => {
    const c = loadConfig(minimal);
    expect(c).toMatchObject({
      windowMs: 60_000,
      graceMs: 30_000,
      idleAdvanceMs: 30_000,
      latePolicy: 'correction',
      dedupeRetentionMs: 86_400_000,
      samplingIntervalMs: 15_000,
      autoCreateTopics: true,
    });
    expect(loadConfig({ ...minimal, GRACE_MS: '100' }).idleAdvanceMs).toBe(100);
  });

  it('leaves out of quiet time a contact gap of half the idle advance, never under three ticks', () => {
    expect(contactGapMs(loadConfig(minimal))).toBe(15_000);
    expect(contactGapMs(loadConfig({ ...minimal, IDLE_ADVANCE_MS: '1000', TICK_MS: '500' }))).toBe(1500);
  });

  it('names the variable it rejects', () => {
    expect(() => loadConfig({ ...minimal, LATE_POLICY: 'drop' })).toThrow(/LATE_POLICY/);
    expect(() => loadConfig({ ...minimal, IDLE_ADVANCE_MS: 'soon' })).toThrow(/IDLE_ADVANCE_MS/);
    expect(() => loadConfig({ ...minimal, BANDWIDTH_SAMPLES_TOPIC: 'runai.pod-allocations.v1' })).toThrow(
      ConfigError,
    );
  });
});

describe('tasks and partitions', () => {
  it('decides the task count: TASKS, else what the group committed, else the gcd of the partition counts', () => {
    const c = loadConfig(minimal);
    const counts = (pods: number, bandwidth: number) =>
      new Map([
        [c.podAllocationsTopic, pods],
        [c.bandwidthSamplesTopic, bandwidth],
      ]);
    const committedWith = (tasks: number | undefined) => [
      {
        topic: c.podAllocationsTopic,
        partition: 0,
        metadata: encodeOffsetMetadata({ wm: 1, closed: 1, through: 1, ...(tasks ? { tasks } : {}) }),
      },
    ];
    expect(c.tasks).toBeUndefined();
    expect(decideTasks(c, counts(12, 6), [])).toBe(6); // a new group: gcd
    expect(decideTasks(c, counts(12, 12), committedWith(6))).toBe(6); // expanded after committing with 6
    expect(decideTasks(c, counts(4, 4), committedWith(undefined))).toBe(4); // an older release: one per partition
    expect(decideTasks({ ...c, tasks: 3 }, counts(12, 6), [])).toBe(3);
    expect(() => decideTasks({ ...c, tasks: 3 }, counts(12, 12), committedWith(6))).toThrow(
      /TASKS: is 3, but the group committed with 6 tasks/,
    );
    expect(() => decideTasks(c, counts(9, 9), committedWith(6))).toThrow(
      /TASKS: is 6, but runai.pod-allocations.v1 has 9 partitions/,
    );
    expect(() => decideTasks(c, new Map([[c.podAllocationsTopic, 6]]), [])).toThrow(
      /BANDWIDTH_SAMPLES_TOPIC/,
    );
    expect(() => decideTasks(c, counts(6, 6), [...committedWith(6), ...committedWith(3)])).toThrow(
      /disagree/,
    );
    expect(loadConfig({ ...minimal, TASKS: '3' }).tasks).toBe(3);
    expect(() => loadConfig({ ...minimal, TASKS: '0' })).toThrow(/TASKS/);
  });

  it('gives all partitions of a task (q mod tasks) of every topic to one member, spreading tasks evenly', () => {
    const counts = new Map([
      ['a', 5],
      ['b', 5],
    ]);
    const plan = taskAssignment(['m2', 'm1'], counts, 5);
    expect(plan.get('m1')).toEqual({ a: [0, 2, 4], b: [0, 2, 4] });
    expect(plan.get('m2')).toEqual({ a: [1, 3], b: [1, 3] });
    // Expanded to twice the tasks: partition 5 + p follows task p to its member.
    const expanded = taskAssignment(['m2', 'm1'], new Map([...counts].map(([t]) => [t, 10])), 5);
    expect(expanded.get('m1')).toEqual({ a: [0, 2, 4, 5, 7, 9], b: [0, 2, 4, 5, 7, 9] });
    expect(expanded.get('m2')).toEqual({ a: [1, 3, 6, 8], b: [1, 3, 6, 8] });
  });
});
