import type { Message } from 'kafkajs';

/**
 * What one `send` may carry. kafkajs writes all of a send's messages for a partition as one record batch,
 * and the broker rejects a batch over max.message.bytes (1 MiB by default) with MESSAGE_TOO_LARGE — on
 * every retry, since the batch never shrinks. Half the default leaves room for record framing.
 */
export const MAX_SEND_BYTES = 512 * 1024;

/** Per-record framing (length, attributes, deltas, header count) counted on top of key, value and headers. */
const RECORD_OVERHEAD_BYTES = 32;

function byteLength(data: Buffer | string | null | undefined): number {
  if (data === null || data === undefined) return 0;
  return typeof data === 'string' ? Buffer.byteLength(data) : data.length;
}

/** The bytes a message adds to a record batch, near enough to stay under the broker's limit. */
export function messageBytes(message: Message): number {
  let bytes = RECORD_OVERHEAD_BYTES + byteLength(message.key) + byteLength(message.value);
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    bytes += Buffer.byteLength(name);
    for (const v of Array.isArray(value) ? value : [value]) bytes += byteLength(v as Buffer | string);
  }
  return bytes;
}

/**
 * Splits messages, in order, into consecutive runs of at most `maxBytes` each (a message larger than that
 * alone makes a run), so that sending the runs one after another writes the same records in the same order.
 */
export function chunksBySize<M extends Message>(messages: readonly M[], maxBytes = MAX_SEND_BYTES): M[][] {
  const chunks: M[][] = [];
  let current: M[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = messageBytes(message);
    if (current.length > 0 && bytes + size > maxBytes) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Sends `messages` to `topic` in runs of at most MAX_SEND_BYTES, in order; `send` is a producer's or a transaction's. */
export async function sendInChunks(
  send: (record: { topic: string; messages: Message[] }) => Promise<unknown>,
  topic: string,
  messages: readonly Message[],
): Promise<void> {
  for (const chunk of chunksBySize(messages)) await send({ topic, messages: chunk });
}

/** Broker answers that no retry of the same batch can change: it is too large for the topic. */
const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);

/**
 * The broker's answer (MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE) when a send failed because its batch (or one record) exceeds the broker's limit. kafkajs bails out of
 * its retrier with the protocol error, sometimes wrapped (KafkaJSNonRetriableError, a cause chain).
 */
export function tooLargeType(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  for (let current = error; typeof current === 'object' && current !== null && !seen.has(current);) {
    seen.add(current);
    const type = String((current as { type?: unknown }).type);
    if (TOO_LARGE.has(type)) return type;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
