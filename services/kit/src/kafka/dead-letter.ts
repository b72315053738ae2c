import type { IHeaders, Message } from 'kafkajs';

/** Header names on every dead-lettered or late record, so an operator can find and replay the original. */
export const DEAD_LETTER_HEADERS = {
  sourceTopic: 'gpu-meter.source.topic',
  sourcePartition: 'gpu-meter.source.partition',
  sourceOffset: 'gpu-meter.source.offset',
  errorCode: 'gpu-meter.error.code',
  errorMessage: 'gpu-meter.error.message',
  reason: 'gpu-meter.reason',
  service: 'gpu-meter.service',
} as const;

export interface SourceRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: IHeaders | undefined;
}

/**
 * The dead-letter form of a record: its original key and bytes untouched, its original headers kept, and
 * headers naming where it came from and why it could not be processed.
 */
export function deadLetterMessage(
  source: SourceRecord,
  failure: { code: string; message: string; service: string },
): Message {
  return {
    key: source.key,
    value: source.value,
    headers: {
      ...(source.headers ?? {}),
      [DEAD_LETTER_HEADERS.sourceTopic]: source.topic,
      [DEAD_LETTER_HEADERS.sourcePartition]: String(source.partition),
      [DEAD_LETTER_HEADERS.sourceOffset]: source.offset,
      [DEAD_LETTER_HEADERS.errorCode]: failure.code,
      [DEAD_LETTER_HEADERS.errorMessage]: failure.message.slice(0, 4000),
      [DEAD_LETTER_HEADERS.service]: failure.service,
    },
  };
}
