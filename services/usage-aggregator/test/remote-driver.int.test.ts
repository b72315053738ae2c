import { describe, expect, it } from 'vitest';
import { stackEnv } from '../../../test/support/kafka.js';
import { packValues } from '../src/batch-transfer.js';
import { AggregatorDriver, type Committed, type DriverRecord } from '../src/driver.js';
import { decodeSample } from '../src/decode.js';
import { RemoteDriver } from '../src/remote-driver.js';
import { baseSettings, pair } from './harness.js';
import { grid, serdes, uniqueTopics } from './int-support.js';

describe('driver worker', () => {
  it('answers every request exactly as the driver in this thread does, poison and tombstones included', async () => {
    const topics = uniqueTopics('remote-driver');
    const { pods, bandwidth } = await serdes(topics);
    const settings = {
      ...baseSettings,
      podAllocationsTopic: topics.pods,
      bandwidthSamplesTopic: topics.bandwidth,
    };
    const samples = grid(['acme', 'globex'], 10_000, 14_000);
    const encoded = samples.map((s) => ('gpus' in s ? pods.encode(s) : bandwidth.encode(s as never)));
    const isPod = samples.map((s) => 'gpus' in s);
    // One pod-topic batch with a poison record and a tombstone in it, then one bandwidth batch.
    const podValues = [...encoded.filter((_, i) => isPod[i]), Buffer.from('not avro'), null];
    const bwValues = encoded.filter((_, i) => !isPod[i]);
    const batches = [
      { topic: topics.pods, values: podValues },
      { topic: topics.bandwidth, values: bwValues },
    ];
    const nothing: Committed = { offset: null, metadata: null };
    const inputs = pair(0, nothing, nothing, [topics.pods, topics.bandwidth]);

    const local = new AggregatorDriver(settings);
    const remote = new RemoteDriver(
      { settings, registry: { schemaRegistryUrl: stackEnv().SCHEMA_REGISTRY_URL! } },
      (error) => {
        throw error;
      },
    );
    try {
      await remote.call({ op: 'assign', task: 0, inputs, nowMs: 1 });
      local.assign(0, inputs, 1);
      for (const [b, batch] of batches.entries()) {
        const offsets = batch.values.map((_, i) => i);
        // The broker's append time of each record: now, as for records just written.
        const timestamps = batch.values.map(() => Date.now());
        const records: DriverRecord[] = [];
        for (const [i, value] of batch.values.entries()) {
          const kind = batch.topic === topics.pods ? 'pod' : 'bandwidth';
          const decoded = await decodeSample(kind, kind === 'pod' ? pods : bandwidth, value);
          records.push({
            topic: batch.topic,
            partition: 0,
            offset: offsets[i]!,
            timestampMs: timestamps[i]!,
            decoded,
          });
        }
        const expected = local.process(0, records, 100 + b);
        local.markConsumed(batch.topic, 0, offsets.length);
        const packed = packValues(batch.values);
        const reply = await remote.call(
          {
            op: 'process',
            partition: 0,
            topic: batch.topic,
            values: packed,
            offsets: Float64Array.from(offsets),
            timestamps: Float64Array.from(timestamps),
            highWatermark: offsets.length,
            nextOffset: offsets.length,
            nowMs: 100 + b,
          },
          [packed.bytes],
        );
        expect(reply.step).toEqual(expected);
        expect(reply.step!.deadLetters).toHaveLength(b === 0 ? 2 : 0);
      }
      const ends = batches.map((batch) => ({ topic: batch.topic, partition: 0, end: batch.values.length }));
      for (const { topic, end } of ends) local.observeEnd(topic, 0, end);
      const closing = local.tick(0, 1e13);
      const reply = await remote.call({ op: 'tick', task: 0, nowMs: 1e13, ends });
      expect(closing.events.length).toBeGreaterThan(0);
      expect(closing.deadLetters).toEqual([]);
      expect(reply.step).toEqual(closing);
      expect(reply.gauges).toMatchObject({ openWindows: 0, openGroups: 0 });

      // A batch for a task the worker does not hold is an error answer, not a crash of the worker.
      await remote.call({ op: 'revoke', task: 0 });
      await expect(remote.call({ op: 'tick', task: 0, nowMs: 1, ends: [] })).rejects.toThrow(
        /task 0 is not assigned/,
      );
      await expect(remote.call({ op: 'assign', task: 0, inputs, nowMs: 1 })).resolves.toBeDefined();
    } finally {
      await remote.close();
    }
  });
});
