import { ConfigError } from '@gpu-meter/kit';
import { describe, expect, it } from 'vitest';
import { coPartitionedAssignment } from '../src/assigner.js';
import { contactGapMs, loadConfig } from '../src/config.js';
import { checkCoPartitioned } from '../src/startup.js';

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

  it('restarts quiet time after a contact gap of half the idle advance, never under three ticks', () => {
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

describe('co-partitioning', () => {
  it('refuses raw topics with different partition counts, naming both', () => {
    const c = loadConfig(minimal);
    const counts = new Map([
      [c.podAllocationsTopic, 6],
      [c.bandwidthSamplesTopic, 3],
    ]);
    expect(() => checkCoPartitioned(c, counts)).toThrow(
      /gpu.bandwidth-samples.v1 has 3 partitions but runai.pod-allocations.v1 has 6/,
    );
    counts.set(c.bandwidthSamplesTopic, 6);
    expect(checkCoPartitioned(c, counts)).toBe(6);
  });

  it('gives partition p of every topic to one member, spreading partitions evenly', () => {
    const plan = coPartitionedAssignment(['m2', 'm1'], ['a', 'b'], 5);
    expect(plan.get('m1')).toEqual({ a: [0, 2, 4], b: [0, 2, 4] });
    expect(plan.get('m2')).toEqual({ a: [1, 3], b: [1, 3] });
  });
});
