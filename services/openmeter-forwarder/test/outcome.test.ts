import { describe, expect, it } from 'vitest';
import { classifyResponse, parseRetryAfter } from '../src/outcome.js';

const now = Date.parse('2026-01-01T00:00:00Z');

describe('parseRetryAfter', () => {
  it('reads delta-seconds', () => expect(parseRetryAfter('7', now)).toBe(7_000));
  it('reads an HTTP-date', () => expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000));
  it('treats a date in the past as now', () =>
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0));
  it.each([null, undefined, '', 'soon'])('ignores %s', (value) =>
    expect(parseRetryAfter(value, now)).toBeUndefined(),
  );
});

describe('classifyResponse', () => {
  it.each([200, 202, 204])('%i is delivered', (status) => {
    expect(classifyResponse(status, null, '', now, 1000).kind).toBe('delivered');
  });

  it.each([400, 413])('%i rejects the content (bisect)', (status) => {
    expect(classifyResponse(status, null, '{"detail":"x"}', now, 1000)).toEqual({
      kind: 'rejected',
      status,
      body: '{"detail":"x"}',
    });
  });

  it.each([429, 500, 502, 503, 504, 401, 403, 404])('%i is retried, never dropped', (status) => {
    expect(classifyResponse(status, null, '', now, 1000).kind).toBe('retry');
  });

  it('honours Retry-After on 429, capped', () => {
    expect(classifyResponse(429, '2', '', now, 60_000)).toMatchObject({ kind: 'retry', retryAfterMs: 2_000 });
    expect(classifyResponse(429, '3600', '', now, 60_000)).toMatchObject({ retryAfterMs: 60_000 });
  });
});
