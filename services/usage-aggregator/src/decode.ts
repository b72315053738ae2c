import {
  PoisonRecordError,
  type BandwidthSample,
  type PodAllocationSample,
  type TopicSerde,
} from '@gpu-meter/kit';
import type { Decoded } from './driver.js';

/**
 * Bytes → driver input. Poison (bad magic byte, unknown schema id, undecodable body) becomes a `poison`
 * record for the dead-letter topic; a registry outage throws, so the batch is retried, not dead-lettered.
 */
export async function decodeSample(
  kind: 'pod' | 'bandwidth',
  serde: TopicSerde<PodAllocationSample> | TopicSerde<BandwidthSample>,
  value: Buffer | null,
): Promise<Decoded> {
  try {
    const decoded = serde.decodeKnown(value) ?? (await serde.decode(value));
    return kind === 'pod'
      ? { kind: 'pod', value: decoded as PodAllocationSample }
      : { kind: 'bandwidth', value: decoded as BandwidthSample };
  } catch (error) {
    if (error instanceof PoisonRecordError)
      return { kind: 'poison', code: error.code, reason: error.message };
    throw error;
  }
}
