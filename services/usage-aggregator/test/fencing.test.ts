import { KafkaJSNonRetriableError, KafkaJSProtocolError } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { isFencedError } from '../src/fencing.js';

// As kafkajs builds them: a protocol error from the broker's code, wrapped by its retrier with the cause.
// kafkajs's typings name only the message; its constructors take the broker error's fields and a cause.
const protocol = (type: string, code: number, message = `${type} (${code})`) =>
  new KafkaJSProtocolError({ type, code, message, retriable: false } as unknown as Error);
const bailed = (e: Error) =>
  new (KafkaJSNonRetriableError as unknown as new (e: Error, o: { cause: Error }) => Error)(e, { cause: e });

describe('fencing', () => {
  it('recognises a newer owner of the transactional id, also behind kafkajs retry wrappers', () => {
    expect(isFencedError(protocol('INVALID_PRODUCER_EPOCH', 47))).toBe(true);
    expect(isFencedError(protocol('UNKNOWN', 90))).toBe(true); // PRODUCER_FENCED, unknown to kafkajs
    expect(isFencedError(bailed(protocol('INVALID_PRODUCER_EPOCH', 47)))).toBe(true);
    expect(
      isFencedError(new Error('wrapped', { cause: protocol('TRANSACTION_COORDINATOR_FENCED', 52) })),
    ).toBe(true);
  });

  it('does not take an outage or a concurrent transaction for fencing', () => {
    expect(isFencedError(bailed(protocol('CONCURRENT_TRANSACTIONS', 51)))).toBe(false);
    expect(isFencedError(protocol('NOT_COORDINATOR', 16))).toBe(false);
    expect(isFencedError(new Error('Connection error: ECONNREFUSED'))).toBe(false);
    expect(isFencedError(undefined)).toBe(false);
  });
});
