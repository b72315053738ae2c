import { readFileSync } from 'node:fs';
import avro from 'avsc';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import {
  avroType,
  GpuMeterError,
  PoisonRecordError,
  SCHEMAS_DIR,
  type SchemaName,
} from '@gpu-meter/kit/contracts';
import { readSchemaId, TopicSerde } from '@gpu-meter/kit/kafka';
import {
  bandwidthFixture,
  podAllocationFixture,
  usageEventFixture,
} from '../../../../test/support/fixtures.js';
import {
  fuzz,
  fuzzAsync,
  mutatedBytes,
  nastyDouble,
  nastyLong,
  nastyString,
} from '../../../../test/support/fuzz.js';

/**
 * Confluent-wire decoding under random and mutated bytes: it returns a value the reader schema accepts,
 * or throws PoisonRecordError (dead-letter), or — only for a registry outage — a retriable GpuMeterError.
 */
const released = (path: string) =>
  JSON.parse(readFileSync(new URL(`released/${path}`, SCHEMAS_DIR), 'utf8')) as avro.Schema;

/** Schema ids the stub registry knows. 404 for the rest; id 500 is an outage. */
const WRITERS: Record<number, avro.Schema> = {
  1: JSON.parse(JSON.stringify(avroType('podAllocationSample').schema())) as avro.Schema,
  2: JSON.parse(JSON.stringify(avroType('bandwidthSample').schema())) as avro.Schema,
  3: JSON.parse(JSON.stringify(avroType('usageEvent').schema())) as avro.Schema,
  4: released('usage-event/v1.avsc'),
  5: 'string',
};
const OUTAGE_ID = 500;

const stubRegistry = {
  getSchema: async (id: number) => {
    if (id === OUTAGE_ID) throw Object.assign(new Error('connect ECONNREFUSED'), { status: undefined });
    const schema = WRITERS[id];
    if (schema === undefined) throw Object.assign(new Error(`Schema ${id} not found`), { status: 404 });
    return { schema: () => schema };
  },
  // The control look-up of the subject answers: an id the registry does not know is poison.
  getLatestSchemaId: async () => 3,
} as unknown as SchemaRegistry;

const settings = { schemaRegistryUrl: 'http://registry.invalid' };

function wire(id: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(id, 1);
  return Buffer.concat([header, body]);
}

const validRecords: Record<SchemaName, fc.Arbitrary<Buffer>> = {
  podAllocationSample: fc
    .record({
      podName: nastyString,
      gpus: nastyDouble,
      spanStartMs: nastyLong,
      migProfile: fc.option(nastyString),
    })
    .map((o) => wire(1, avroType('podAllocationSample').toBuffer(podAllocationFixture(o)))),
  bandwidthSample: fc
    .record({
      hostname: nastyString,
      share: nastyDouble,
      gpuIndex: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    })
    .map((o) => wire(2, avroType('bandwidthSample').toBuffer(bandwidthFixture(o)))),
  usageEvent: fc
    .record({
      subject: nastyString,
      windowStartMs: nastyLong,
      gpuAllocationSeconds: nastyDouble,
      correction: fc.boolean(),
    })
    .chain((o) =>
      fc.constantFrom(
        wire(3, avroType('usageEvent').toBuffer(usageEventFixture(o))),
        // An older writer (v1, no `correction`): decoded through a resolver.
        wire(
          4,
          avro.Type.forSchema(WRITERS[4]!).toBuffer({ ...usageEventFixture(o), correction: undefined }),
        ),
      ),
    ),
};

/** Any schema's valid message may arrive on any topic (misrouted producer), then gets mutated. */
const anyValid = fc.oneof(
  validRecords.podAllocationSample,
  validRecords.bandwidthSample,
  validRecords.usageEvent,
);
const messages = fc.oneof(
  { weight: 6, arbitrary: mutatedBytes(anyValid) },
  { weight: 1, arbitrary: anyValid },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(1, 2, 3, 4, 5, 6, OUTAGE_ID), fc.uint8Array({ maxLength: 200 }))
      .map(([id, body]) => wire(id, Buffer.from(body))),
  },
);

const NAMES: SchemaName[] = ['podAllocationSample', 'bandwidthSample', 'usageEvent'];

/** The decoded value must be one the local schema accepts (types, int ranges, unions). */
function expectValid(name: SchemaName, value: unknown): void {
  const problems: string[] = [];
  const ok = avroType(name).isValid(value, { errorHook: (path) => problems.push(path.join('.')) });
  expect(ok, `${name} decoded an invalid value at ${problems.join(', ')}`).toBe(true);
}

describe('readSchemaId under random bytes', () => {
  it('returns a 32-bit id or throws PoisonRecordError', () => {
    fuzz(
      fc.property(fc.option(mutatedBytes(anyValid), { nil: null }), (message) => {
        try {
          const id = readSchemaId(message);
          expect(Number.isInteger(id) && id >= 0 && id <= 0xffffffff).toBe(true);
          expect(message![0]).toBe(0);
        } catch (error) {
          expect(error).toBeInstanceOf(PoisonRecordError);
        }
      }),
      2000,
    );
  });
});

describe.each(NAMES)('TopicSerde<%s> decode', (name) => {
  it('decodes valid messages back to the value written', async () => {
    await fuzzAsync(
      fc.asyncProperty(validRecords[name], async (message) => {
        const serde = new TopicSerde(stubRegistry, settings, 't', name);
        expectValid(name, await serde.decode(message));
      }),
      100,
    );
  });

  it('turns mutated and random bytes into a valid value, poison, or (outage only) a retriable error', async () => {
    // One serde across runs, as in a service: its resolver cache fills up as ids are seen.
    const serde = new TopicSerde(stubRegistry, settings, 't', name);
    await fuzzAsync(
      fc.asyncProperty(messages, async (message) => {
        let known: unknown;
        let syncError: unknown;
        try {
          known = serde.decodeKnown(message);
        } catch (error) {
          syncError = error;
        }
        try {
          const value = await serde.decode(message);
          expectValid(name, value);
          // The hot path agrees with the full path whenever it had the schema.
          expect(syncError).toBeUndefined();
          if (known !== undefined) expect(known).toEqual(value);
        } catch (error) {
          if (error instanceof PoisonRecordError) {
            expect(error.message.length).toBeGreaterThan(0);
            if (known !== undefined) throw new Error('decodeKnown accepted what decode rejects');
            return;
          }
          expect(error).toBeInstanceOf(GpuMeterError);
          expect((error as GpuMeterError).retriable).toBe(true);
          expect(message.readUInt32BE(1)).toBe(OUTAGE_ID);
        }
        if (syncError !== undefined) expect(syncError).toBeInstanceOf(PoisonRecordError);
      }),
      1500,
    );
  });
});

describe.each(NAMES)('TopicSerde<%s> decodeKnownAt', (name) => {
  it('decodes a message inside a larger buffer exactly as decodeKnown decodes it alone', async () => {
    const serde = new TopicSerde(stubRegistry, settings, 't', name);
    await fuzzAsync(
      fc.asyncProperty(
        messages,
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ maxLength: 40 }),
        async (message, before, after) => {
          await serde.decode(message).catch(() => undefined); // loads the schema id if it is loadable
          const outcome = (decode: () => unknown) => {
            try {
              return { value: decode() };
            } catch (error) {
              return { error: `${(error as Error).constructor.name}: ${(error as Error).message}` };
            }
          };
          const packed = Buffer.concat([before, message, after]);
          const start = before.length;
          expect(outcome(() => serde.decodeKnownAt(packed, start, start + message.length))).toEqual(
            outcome(() => serde.decodeKnown(message)),
          );
        },
      ),
      1500,
    );
  });
});

describe('over-long varints (corrupt lengths and ints)', () => {
  it('never decode to an out-of-range int, NaN or Infinity', async () => {
    // Continuation bytes inserted before any byte of the body: avsc reads them as part of a varint.
    const serde = new TopicSerde(stubRegistry, settings, 't', 'bandwidthSample');
    await fuzzAsync(
      fc.asyncProperty(
        validRecords.bandwidthSample,
        fc.nat(),
        fc.integer({ min: 1, max: 160 }),
        async (message, at, length) => {
          const cut = 5 + (at % (message.length - 5));
          const mutated = Buffer.concat([
            message.subarray(0, cut),
            Buffer.alloc(length, 0xff),
            message.subarray(cut),
          ]);
          try {
            expectValid('bandwidthSample', await serde.decode(mutated));
          } catch (error) {
            expect(error).toBeInstanceOf(PoisonRecordError);
          }
        },
      ),
      600,
    );
  });
});
