import { GpuMeterError } from '@gpu-meter/kit/contracts';

/** Header carrying OpenMeter's answer on a dead-lettered event. */
export const RESPONSE_BODY_HEADER = 'gpu-meter.openmeter.response';

/** What one POST of a batch came to. */
export type PostOutcome =
  | { kind: 'delivered'; status: number }
  /** The request was refused for its content (400, 413): some event in it is bad; bisect. */
  | { kind: 'rejected'; status: number; body: string }
  /** Nothing wrong with the events; try again later (429, 5xx, timeout, connection error, auth). */
  | { kind: 'retry'; status?: number; reason: string; retryAfterMs?: number };

/** Retry-After is delta-seconds or an HTTP-date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

/** Pure classification of an HTTP answer from the ingest endpoint. */
export function classifyResponse(
  status: number,
  retryAfter: string | null,
  body: string,
  nowMs: number,
  retryAfterMaxMs: number,
): PostOutcome {
  if (status >= 200 && status < 300) return { kind: 'delivered', status };
  if (status === 400 || status === 413) return { kind: 'rejected', status, body };
  const wait = parseRetryAfter(retryAfter, nowMs);
  // 401/403/404 are configuration faults, not bad events: keep the events and keep trying (loudly).
  return {
    kind: 'retry',
    status,
    reason: `HTTP ${status}: ${body.slice(0, 500)}`,
    ...(wait === undefined ? {} : { retryAfterMs: Math.min(wait, retryAfterMaxMs) }),
  };
}

/** Thrown to have the whole batch sent again later; BatchConsumer waits at least `retryAfterMs`. */
export class DeliveryRetryError extends GpuMeterError {
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  /** Held for newer records: BatchConsumer keeps taking records while it retries this batch. */
  wantsMoreRecords = false;

  constructor(outcome: Extract<PostOutcome, { kind: 'retry' }>) {
    super('SINK_UNAVAILABLE', `OpenMeter did not take the batch: ${outcome.reason}`);
    this.name = 'DeliveryRetryError';
    this.status = outcome.status;
    this.retryAfterMs = outcome.retryAfterMs;
  }
}
