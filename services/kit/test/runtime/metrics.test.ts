import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { metricsOn } from '@gpu-meter/kit/runtime';
import { sharedCollectorMetrics } from '../../src/runners/collector-metrics.js';

describe('metricsOn', () => {
  it('makes a gauge that reads its value at each scrape', async () => {
    const registry = new Registry();
    let size = 3;
    metricsOn(registry).gauge('queue_size', 'Items queued.', [], { read: () => size });
    expect(await registry.metrics()).toContain('queue_size 3');
    size = 5;
    expect(await registry.metrics()).toContain('queue_size 5');
  });

  it("makes a histogram with its own buckets, or prom-client's default ones", async () => {
    const registry = new Registry();
    const { histogram } = metricsOn(registry);
    histogram('own_seconds', 'With buckets.', [], { buckets: [1, 60] }).observe(2);
    histogram('default_seconds', 'Without.').observe(2);
    const text = await registry.metrics();
    expect(text.match(/own_seconds_bucket\{le="[^"]+"\}/g)).toEqual([
      'own_seconds_bucket{le="1"}',
      'own_seconds_bucket{le="60"}',
      'own_seconds_bucket{le="+Inf"}',
    ]);
    expect(text.match(/default_seconds_bucket/g)?.length).toBe(12); // prom-client's 11 defaults and +Inf
  });
});

describe('the metrics every collector shares', () => {
  it('report the send buffer size at each scrape', async () => {
    const registry = new Registry();
    sharedCollectorMetrics(registry, () => 42);
    expect(await registry.metrics()).toContain(
      '# HELP gpumeter_send_buffer_size Samples waiting to be sent to Kafka.\n# TYPE gpumeter_send_buffer_size gauge\ngpumeter_send_buffer_size 42',
    );
  });
});
