import { describe, expect, it } from 'vitest';
import { PoisonRecordError, USAGE_QUANTITIES } from '@gpu-meter/kit/contracts';
import { usageEventFixture } from '../../../test/support/fixtures.js';
import { toUsageRow, validateUsageEvent } from '../src/row.js';

const source = { topic: 'usage.events.v1', partition: 3, offset: '42' };

describe('toUsageRow', () => {
  it('maps every dimension, quantity and window bound, and where the event was read', () => {
    const event = usageEventFixture({ correction: true, gpuAllocationSeconds: 0.1 + 0.2 });
    const row = toUsageRow(event, source, 1_767_300_000_123);
    expect(row).toMatchObject({
      id: event.id,
      subject: 'acme',
      cluster_id: 'cluster-a',
      project: 'team-a',
      department: 'research',
      workload_type: 'Training',
      gpu_type: 'NVIDIA-A100-SXM4-80GB',
      window_start: 1_767_225_600,
      window_end: 1_767_225_660,
      window_start_ms: 1_767_225_600_000,
      window_end_ms: 1_767_225_660_000,
      sample_count: 4,
      correction: 1,
      kafka_topic: 'usage.events.v1',
      kafka_partition: 3,
      kafka_offset: 42,
      inserted_at: 1_767_300_000,
    });
    // Full precision: the quantity goes through unrounded.
    expect(row.gpu_allocation_seconds).toBe(0.1 + 0.2);
    expect(row.gpu_memory_allocated_byte_seconds).toBe(event.gpuMemoryAllocatedByteSeconds);
  });

  it('has one column per quantity of the contract', () => {
    const row = toUsageRow(usageEventFixture(), source, 0);
    const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    for (const quantity of USAGE_QUANTITIES) expect(row).toHaveProperty(snake(quantity));
  });

  it('maps a regular event to correction 0', () => {
    expect(toUsageRow(usageEventFixture({ correction: false }), source, 0).correction).toBe(0);
  });
});

describe('validateUsageEvent', () => {
  it('accepts the fixture', () => {
    expect(() => validateUsageEvent(usageEventFixture())).not.toThrow();
  });

  it.each([
    ['an empty id', { id: '' }],
    ['an empty window', { windowEndMs: 1_767_225_600_000 }],
    ['a NaN quantity', { cpuCoreSeconds: Number.NaN }],
    ['an infinite quantity', { nvlinkTxBytes: Number.POSITIVE_INFINITY }],
  ])('rejects %s as poison', (_label, overrides) => {
    expect(() => validateUsageEvent(usageEventFixture(overrides))).toThrow(PoisonRecordError);
  });
});
