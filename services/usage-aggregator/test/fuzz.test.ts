import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import {
  avroType,
  GpuMeterError,
  USAGE_QUANTITIES,
  type BandwidthSample,
  type PodAllocationSample,
} from '@gpu-meter/kit/contracts';
import { TopicSerde } from '@gpu-meter/kit/kafka';
import { bandwidthFixture, podAllocationFixture } from '../../../test/support/fixtures.js';
import {
  fuzz,
  fuzzAsync,
  mutatedBytes,
  mutatedJson,
  nastyDouble,
  nastyLong,
  nastyString,
} from '../../../test/support/fuzz.js';
import { decodeSample } from '../src/decode.js';
import type { Decoded } from '../src/decode.js';
import { AggregatorDriver } from '../src/driver.js';
import { fromBandwidth, fromPodAllocation, invalidReason, timeInvalidReason } from '../src/samples.js';
import { baseSettings, BW, POD, pair } from './harness.js';

/**
 * Raw samples as the aggregator meets them: bytes → decodeSample → driver (fromX + invalidReason → task). Bytes
 * end as a sample the schema accepts or as poison; a decoded sample is billed only when valid, else it is
 * dead-lettered; the driver never throws on its input and never emits a quantity that is not finite and
 * non-negative.
 */
const POD_ID = 11;
const BW_ID = 12;
const OUTAGE_ID = 500;
const registry = {
  getSchema: async (id: number) => {
    if (id === OUTAGE_ID) throw new Error('socket hang up');
    const type =
      id === POD_ID
        ? avroType('podAllocationSample')
        : id === BW_ID
          ? avroType('bandwidthSample')
          : undefined;
    if (!type) throw Object.assign(new Error(`Schema ${id} not found`), { status: 404 });
    return { schema: () => JSON.parse(JSON.stringify(type.schema())) as unknown };
  },
  // The control look-up of the subject answers: an id the registry does not know is poison.
  getLatestSchemaId: async () => POD_ID,
} as unknown as SchemaRegistry;
const settings = { schemaRegistryUrl: 'http://registry.invalid' };

function wire(id: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(id, 1);
  return Buffer.concat([header, body]);
}

/** Mostly a plausible span near `observedAtMs` (so that many samples pass and reach the windows), sometimes any longs. */
const times = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.integer({ min: 1_767_225_000, max: 1_767_226_000 }),
        fc.integer({ min: -10, max: 6000 }),
        fc.integer({ min: -10, max: 6000 }),
      )
      .map(([seconds, back, length]) => ({
        observedAtMs: seconds * 1000,
        spanStartMs: seconds * 1000 - back,
        spanEndMs: seconds * 1000 - back + length,
      })),
  },
  {
    weight: 1,
    arbitrary: fc.record({ observedAtMs: nastyLong, spanStartMs: nastyLong, spanEndMs: nastyLong }),
  },
);

const podSample: fc.Arbitrary<PodAllocationSample> = fc
  .record(
    {
      id: fc.oneof(
        fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }),
        nastyString,
      ),
      subject: nastyString,
      gpus: nastyDouble,
      gpuMemoryBytes: nastyLong,
      cpuCores: nastyDouble,
      memoryBytes: nastyLong,
      gpuType: nastyString,
    },
    { requiredKeys: [] },
  )
  .chain((o) => times.map((t) => podAllocationFixture({ ...o, ...t })));

const bandwidthSample: fc.Arbitrary<BandwidthSample> = fc
  .record(
    {
      id: nastyString,
      subject: nastyString,
      share: nastyDouble,
      nvlinkTxBytesPerSecond: nastyDouble,
      pcieRxBytesPerSecond: nastyDouble,
      fbUsedBytes: nastyDouble,
      workloadType: nastyString,
    },
    { requiredKeys: [] },
  )
  .chain((o) => times.map((t) => bandwidthFixture({ ...o, ...t })));

const validBytes = fc.oneof(
  podSample.map((s) => wire(POD_ID, avroType('podAllocationSample').toBuffer(s))),
  bandwidthSample.map((s) => wire(BW_ID, avroType('bandwidthSample').toBuffer(s))),
);
const messages = fc.oneof(
  { weight: 5, arbitrary: mutatedBytes(validBytes) },
  { weight: 1, arbitrary: validBytes },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 48 }).map((a) => Buffer.from(a)) },
);

/** What bytes may decode to on either topic, plus structurally broken objects (wrong types, missing fields). */
const decoded: fc.Arbitrary<Decoded> = fc.oneof(
  podSample.map((value): Decoded => ({ kind: 'pod', value })),
  bandwidthSample.map((value): Decoded => ({ kind: 'bandwidth', value })),
  mutatedJson(podSample).map((value): Decoded => ({ kind: 'pod', value })),
  mutatedJson(bandwidthSample).map((value): Decoded => ({ kind: 'bandwidth', value })),
  fc.constant<Decoded>({ kind: 'poison', code: 'GPUM_DECODE_FAILED', reason: 'bad magic byte 7' }),
);

describe('decodeSample under mutated bytes', () => {
  it.each([
    ['pod', 'podAllocationSample'],
    ['bandwidth', 'bandwidthSample'],
  ] as const)('%s: a schema-valid sample or a poison record with a reason', async (kind, schema) => {
    const serde = new TopicSerde<PodAllocationSample | BandwidthSample>(registry, settings, 't', schema);
    await fuzzAsync(
      fc.asyncProperty(
        fc.oneof(
          { weight: 20, arbitrary: messages },
          { weight: 1, arbitrary: fc.constant(wire(OUTAGE_ID, Buffer.alloc(3))) },
        ),
        async (message) => {
          let result: Decoded;
          try {
            result = await decodeSample(kind, serde as never, message);
          } catch (error) {
            // Only a registry outage may escape (retried, never dead-lettered).
            expect(error).toBeInstanceOf(GpuMeterError);
            expect((error as GpuMeterError).retriable).toBe(true);
            return;
          }
          if (result.kind === 'poison') {
            expect(result.code).toBe('GPUM_DECODE_FAILED');
            expect(result.reason.length).toBeGreaterThan(0);
          } else {
            expect(result.kind).toBe(kind);
            expect(avroType(schema).isValid(result.value)).toBe(true);
          }
        },
      ),
      1200,
    );
  });
});

describe('fromX + invalidReason under random and mutated samples', () => {
  it('accepts only finite non-negative levels over a positive, bounded, integer span', () => {
    fuzz(
      fc.property(decoded, (d) => {
        if (d.kind === 'poison') return;
        let sample;
        try {
          sample = d.kind === 'pod' ? fromPodAllocation(d.value) : fromBandwidth(d.value);
        } catch (error) {
          // The driver turns a mapping failure into a dead letter; it must at least say why.
          expect(error).toBeInstanceOf(Error);
          return;
        }
        const reason = invalidReason(sample, baseSettings.maxSampleSpanMs);
        if (reason !== undefined) {
          expect(reason.length).toBeGreaterThan(0);
          return;
        }
        const s = sample;
        expect(typeof s.id === 'string' && s.id.trim() !== '').toBe(true);
        expect(typeof s.dims.subject === 'string' && s.dims.subject.trim() !== '').toBe(true);
        for (const t of [s.observedAtMs, s.spanStartMs, s.spanEndMs])
          expect(Number.isSafeInteger(t)).toBe(true);
        expect(s.spanEndMs).toBeGreaterThan(s.spanStartMs);
        expect(s.spanEndMs - s.spanStartMs).toBeLessThanOrEqual(baseSettings.maxSampleSpanMs);
        for (const level of Object.values(s.levels)) {
          expect(Number.isFinite(level) && level >= 0).toBe(true);
        }
      }),
      3000,
    );
  });
});

const streams = fc.tuple(
  fc.array(fc.record({ topic: fc.constantFrom(POD, BW), decoded }), { minLength: 1, maxLength: 30 }),
  fc.integer({ min: 1_767_225_000_000, max: 1_767_226_000_000 }),
);

/** Feeds one batch to a fresh task, then lets time close every window. */
function drive(records: ReadonlyArray<{ topic: string; decoded: Decoded }>, nowMs: number) {
  const driver = new AggregatorDriver(baseSettings);
  driver.assign(0, pair(0, { offset: null, metadata: null }, { offset: null, metadata: null }), nowMs);
  const offsets = new Map<string, number>();
  const batch = records.map(({ topic, decoded: d }) => {
    const offset = offsets.get(topic) ?? 0;
    offsets.set(topic, offset + 1);
    return { topic, partition: 0, offset, decoded: d };
  });
  const first = driver.process(0, batch, nowMs);
  const last = driver.tick(0, Number.MAX_SAFE_INTEGER);
  return {
    batch,
    deadLetters: [...first.deadLetters, ...last.deadLetters],
    events: [...first.events, ...last.events],
  };
}

function rejected(d: Decoded): boolean {
  if (d.kind === 'poison') return true;
  try {
    const s = d.kind === 'pod' ? fromPodAllocation(d.value) : fromBandwidth(d.value);
    return (
      invalidReason(s, baseSettings.maxSampleSpanMs) !== undefined ||
      timeInvalidReason(s, baseSettings, undefined) !== undefined
    );
  } catch {
    return true;
  }
}

describe('driver under a stream of random, mutated and poison records', () => {
  it('never throws and dead-letters exactly the rejected records, each with a code and a reason', () => {
    fuzz(
      fc.property(streams, ([records, nowMs]) => {
        const { batch, deadLetters } = drive(records, nowMs);
        const invalid = batch.filter((r) => rejected(r.decoded));
        expect(deadLetters.map((d) => `${d.topic}:${d.offset}`).sort()).toEqual(
          invalid.map((r) => `${r.topic}:${r.offset}`).sort(),
        );
        for (const d of deadLetters) expect(d.code.length > 0 && d.reason.length > 0).toBe(true);
      }),
      300,
    );
  });

  it('emits only finite, non-negative quantities (one absurd sample must not poison a group window)', () => {
    fuzz(
      fc.property(streams, ([records, nowMs]) => {
        for (const event of drive(records, nowMs).events) {
          expect(event.windowEndMs).toBeGreaterThan(event.windowStartMs);
          expect(event.sampleCount).toBeGreaterThan(0);
          for (const q of USAGE_QUANTITIES)
            expect(Number.isFinite(event[q]) && event[q] >= 0, `${q} = ${event[q]}`).toBe(true);
        }
      }),
      300,
    );
  });
});
