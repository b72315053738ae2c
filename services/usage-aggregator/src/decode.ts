import { PoisonRecordError, type TopicSerde } from '@gpu-meter/kit';
import type { Decoded } from './driver.js';
import type { BandwidthFields, PodAllocationFields } from './samples.js';

type SampleSerde = TopicSerde<PodAllocationFields> | TopicSerde<BandwidthFields>;

/**
 * Bytes → driver input. Poison (bad magic byte, unknown schema id, undecodable body) becomes a `poison`
 * record for the dead-letter topic; a registry outage throws, so the batch is retried, not dead-lettered.
 */
export async function decodeSample(
  kind: 'pod' | 'bandwidth',
  serde: SampleSerde,
  value: Buffer | null,
): Promise<Decoded> {
  return decodeSampleKnown(kind, serde, value) ?? (await decodeWith(kind, () => serde.decode(value)));
}

/**
 * The hot path: synchronous when the schema id is already known (every record but the first of a new
 * writer schema), so a batch decodes without one await per record. Undefined = ask `decodeSample`.
 */
export function decodeSampleKnown(
  kind: 'pod' | 'bandwidth',
  serde: SampleSerde,
  value: Buffer | null,
): Decoded | undefined {
  try {
    const decoded = serde.decodeKnown(value);
    return decoded === undefined ? undefined : wrap(kind, decoded);
  } catch (error) {
    return poison(error);
  }
}

async function decodeWith(
  kind: 'pod' | 'bandwidth',
  decode: () => Promise<PodAllocationFields | BandwidthFields>,
): Promise<Decoded> {
  try {
    return wrap(kind, await decode());
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
