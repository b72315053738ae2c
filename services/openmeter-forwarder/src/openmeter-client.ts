import type { CloudEvent } from './cloudevent.js';
import { classifyResponse, type PostOutcome } from './outcome.js';

export const BATCH_CONTENT_TYPE = 'application/cloudevents-batch+json';

export interface OpenMeterClientOptions {
  url: string;
  token?: string | undefined;
  timeoutMs: number;
  retryAfterMaxMs: number;
}

/**
 * POSTs batches of CloudEvents to OpenMeter's ingest endpoint. Never throws: every failure is an outcome.
 * The token only ever goes into the Authorization header; no outcome or message carries it.
 */
export class OpenMeterClient {
  private readonly endpoint: string;

  constructor(private readonly options: OpenMeterClientOptions) {
    this.endpoint = `${options.url.replace(/\/+$/, '')}/api/v1/events`;
  }

  async post(events: readonly CloudEvent[]): Promise<PostOutcome> {
    const headers: Record<string, string> = { 'content-type': BATCH_CONTENT_TYPE };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    try {
      const response = await fetch(this.endpoint, {
        method: 'POST',
        headers,
        body: JSON.stringify(events),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      const body = await response.text();
      return classifyResponse(
        response.status,
        response.headers.get('retry-after'),
        body,
        Date.now(),
        this.options.retryAfterMaxMs,
      );
    } catch (error) {
      return { kind: 'retry', reason: failureReason(error, this.options.timeoutMs) };
    }
  }
}

/** A short reason for a request that got no answer: timeout, or the socket error's code. */
function failureReason(error: unknown, timeoutMs: number): string {
  if ((error as Error).name === 'TimeoutError') return `no answer in ${timeoutMs} ms`;
  const code = (error as { cause?: { code?: unknown } }).cause?.code;
  return `${(error as Error).message}${typeof code === 'string' ? ` (${code})` : ''}`;
}
