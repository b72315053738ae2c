import { PoisonRecordError } from '@gpu-meter/kit/contracts';
import type { TopicSerde } from '@gpu-meter/kit/kafka';
import type { BandwidthFields, PodAllocationFields } from './samples.js';

/** A raw record's value as the driver takes it: a sample's fields, or poison with its reason. */
export type Decoded =
  | { kind: 'pod'; value: PodAllocationFields }
  | { kind: 'bandwidth'; value: BandwidthFields }
  | { kind: 'poison'; code: string; reason: string };

type SampleSerde = TopicSerde<PodAllocationFields> | TopicSerde<BandwidthFields>;

/**
 * Bytes → driver input. Poison (bad magic byte, unknown schema id, undecodable body) becomes a `poison`
 * record for the dead-letter topic; a registry outage throws, so the batch is retried, not dead-lettered.
 * Asks the registry for a writer schema id seen for the first time.
 */
export async function decodeSample(
  kind: 'pod' | 'bandwidth',
  serde: SampleSerde,
  value: Buffer | null,
): Promise<Decoded> {
  try {
    return wrap(kind, await serde.decode(value));
  } catch (error) {
    return poison(error);
  }
}

/**
 * The hot path: `decodeSample` of the value at [start, end) of a packed batch whose writer schema is
 * already loaded (`knowsSchemaOf`), synchronously, so a batch decodes without one await per record.
 */
export function decodeSampleKnownAt(
  kind: 'pod' | 'bandwidth',
  serde: SampleSerde,
  bytes: Buffer,
  start: number,
  end: number,
): Decoded {
  try {
    const decoded = serde.decodeKnownAt(bytes, start, end);
    if (decoded === undefined) throw new Error(`writer schema of the record at ${start} is not loaded`);
    return wrap(kind, decoded);
  } catch (error) {
    return poison(error);
  }
}

function wrap(kind: 'pod' | 'bandwidth', decoded: PodAllocationFields | BandwidthFields): Decoded {
  return kind === 'pod'
    ? { kind: 'pod', value: decoded as PodAllocationFields }
    : { kind: 'bandwidth', value: decoded as BandwidthFields };
}

function poison(error: unknown): Decoded {
  if (error instanceof PoisonRecordError) return { kind: 'poison', code: error.code, reason: error.message };
  throw error;
}
