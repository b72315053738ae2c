import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake of OpenMeter's ingest endpoint, `POST /api/v1/events`, faithful in what the forwarder relies on:
 * - `application/cloudevents+json` (one event) and `application/cloudevents-batch+json` (an array);
 * - each event needs `id`, `source`, `specversion` '1.0', `type`, `subject` (non-empty strings) and `data`
 *   an object, else 400 with an RFC 9457 problem+json body naming the bad event; the whole request is
 *   refused (nothing of it is recorded);
 * - a Bearer token, when configured (else 401);
 * - deduplication on (source, id) as OpenMeter configures it (`dedupe`): `off` by default, as a self-hosted
 *   OpenMeter ships, so a resend is billed again; `lru:N` keeps the last N keys (the memory driver, 128 by
 *   default); `ttl:MS` keeps each key MS from its first arrival (the Redis driver, 24 h by default);
 * - 204 No Content on success.
 * Every request is kept raw (`rawRequests`: status and the events it carried), so a test can count what the
 * receiver really got, e.g. an event id accepted twice, whatever the dedupe mode hides.
 * Faults can be scripted for chosen requests (a queue, one entry per request): 429 (with Retry-After), 500,
 * 400, hanging until the client gives up, or 'pass' to serve one normally.
 */
export interface CloudEventLike {
  specversion?: unknown;
  id?: unknown;
  source?: unknown;
  type?: unknown;
  subject?: unknown;
  time?: unknown;
  data?: unknown;
}

export type Fault =
  /** Serve this request normally (to script "the first N succeed, then ..."). */
  | { kind: 'pass' }
  | { kind: 'status'; status: 429; retryAfterSeconds?: number }
  | { kind: 'status'; status: 400 | 500 | 502 | 503 }
  | { kind: 'hang' };

export interface RequestLog {
  /** Arrival time, epoch ms. */
  at: number;
  status: number | 'hung';
  contentType: string;
  events: number;
}

/** A request as it arrived: its answer and the events its body carried (parsed, even when refused). */
export interface RawRequest extends RequestLog {
  body: CloudEventLike[];
}

/** OpenMeter's ingest deduplication: none, the memory driver (last N keys), or Redis (keys kept MS). */
export type DedupeMode = 'off' | `lru:${number}` | `ttl:${number}`;

/** Parses `off`, `lru:N` or `ttl:MS`; throws on anything else. */
export function parseDedupeMode(mode: string): DedupeMode {
  if (mode === 'off') return mode;
  const match = /^(lru|ttl):(\d+)$/.exec(mode);
  if (!match || Number(match[2]) < 1) throw new Error(`dedupe mode ${mode}: expected off, lru:N or ttl:MS`);
  return mode as DedupeMode;
}

/** Keys seen, as one dedupe mode remembers them. */
class Deduplicator {
  private readonly keys = new Map<string, number>();

  constructor(
    private readonly mode: DedupeMode,
    private readonly now: () => number,
  ) {}

  /** True when `key` counts as new (and remembers it). */
  admit(key: string): boolean {
    if (this.mode === 'off') return true;
    const [kind, amount] = this.mode.split(':') as ['lru' | 'ttl', string];
    const limit = Number(amount);
    const now = this.now();
    const seen = this.keys.get(key);
    if (kind === 'ttl') {
      // Redis SET NX EX: the first arrival starts the clock; a duplicate does not extend it.
      if (seen !== undefined && seen > now) return false;
      this.keys.set(key, now + limit);
      if (this.keys.size > 100_000) for (const [k, until] of this.keys) if (until <= now) this.keys.delete(k);
      return true;
    }
    if (seen !== undefined) {
      // A hit refreshes the key's recency, as an LRU cache does.
      this.keys.delete(key);
      this.keys.set(key, now);
      return false;
    }
    this.keys.set(key, now);
    if (this.keys.size > limit) this.keys.delete(this.keys.keys().next().value!);
    return true;
  }
}

const SINGLE = 'application/cloudevents+json';
const BATCH = 'application/cloudevents-batch+json';

/** Why an event is not a valid OpenMeter CloudEvent, or undefined when it is. */
export function invalidReason(event: unknown): string | undefined {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return 'event is not an object';
  const e = event as CloudEventLike;
  for (const field of ['id', 'source', 'type', 'subject'] as const) {
    if (typeof e[field] !== 'string' || (e[field] as string).length === 0) return `${field} is required`;
  }
  if (e.specversion !== '1.0') return 'specversion must be 1.0';
  if (e.time !== undefined && (typeof e.time !== 'string' || Number.isNaN(Date.parse(e.time)))) {
    return 'time must be an RFC 3339 timestamp';
  }
  if (typeof e.data !== 'object' || e.data === null || Array.isArray(e.data)) return 'data must be an object';
  return undefined;
}

export class FakeOpenMeter {
  /** Accepted events OpenMeter would bill, in arrival order: every one with dedupe `off`. */
  readonly events: CloudEventLike[] = [];
  readonly requests: RequestLog[] = [];
  /** Every request as it arrived, with its body's events, whatever was answered. */
  readonly rawRequests: RawRequest[] = [];
  private dedupe: Deduplicator;
  private readonly faults: Fault[] = [];
  private always: Fault | undefined;
  private readonly hung = new Set<ServerResponse>();
  private server: Server | undefined;

  constructor(private readonly options: { token?: string; dedupe?: DedupeMode } = {}) {
    this.dedupe = new Deduplicator(options.dedupe ?? 'off', Date.now);
  }

  /** Switches dedupe mode from now on (forgetting the keys seen so far). */
  setDedupe(mode: DedupeMode): void {
    this.dedupe = new Deduplicator(parseDedupeMode(mode), Date.now);
  }

  /** How many times each (source, id) was accepted (2xx), counted over the raw requests. */
  acceptedCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const request of this.rawRequests) {
      if (typeof request.status !== 'number' || request.status < 200 || request.status >= 300) continue;
      for (const event of request.body) {
        const key = `${String(event.source)}/${String(event.id)}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    return counts;
  }

  /** Events accepted more than once (what OpenMeter without dedupe bills twice): extra arrivals, summed. */
  duplicateArrivals(): number {
    let extra = 0;
    for (const count of this.acceptedCounts().values()) extra += count - 1;
    return extra;
  }

  /** The next requests (one fault each, in order) fail as scripted; later ones are served normally. */
  failNext(...faults: Fault[]): void {
    this.faults.push(...faults);
  }

  /** Every request from now on fails as `fault` (after the scripted ones) until `clearFaults`. */
  failAll(fault: Fault): void {
    this.always = fault;
  }

  /** Drops the scripted faults not yet used and any `failAll`: the outage is over. */
  clearFaults(): void {
    this.faults.length = 0;
    this.always = undefined;
  }

  get pendingFaults(): number {
    return this.faults.length;
  }

  /** `host` 0.0.0.0 serves other containers (docker/compose.yaml runs it through fake-openmeter-main.ts). */
  async start(port = 0, host = '127.0.0.1'): Promise<string> {
    this.server = createServer((request, response) => void this.handle(request, response));
    await new Promise<void>((resolve) => this.server!.listen(port, host, resolve));
    return `http://${host}:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const response of this.hung) response.destroy();
    this.hung.clear();
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const arrivedAt = Date.now();
    const body = await readBody(request);
    const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const raw = rawEvents(body);
    const log = (status: RequestLog['status'], events: number) => {
      this.requests.push({ at: arrivedAt, status, contentType, events });
      this.rawRequests.push({ at: arrivedAt, status, contentType, events, body: raw });
    };
    if (request.method !== 'POST' || request.url?.split('?')[0] !== '/api/v1/events') {
      log(404, 0);
      return problem(response, 404, 'Not Found', `no route ${request.method} ${request.url}`);
    }
    if (
      this.options.token !== undefined &&
      request.headers.authorization !== `Bearer ${this.options.token}`
    ) {
      log(401, 0);
      return problem(response, 401, 'Unauthorized', 'missing or invalid bearer token');
    }
    const fault = this.faults.shift() ?? this.always;
    if (fault?.kind === 'hang') {
      log('hung', 0);
      this.hung.add(response);
      response.on('close', () => this.hung.delete(response));
      return;
    }
    if (fault?.kind === 'status') {
      log(fault.status, 0);
      if (fault.status === 429) response.setHeader('retry-after', String(fault.retryAfterSeconds ?? 1));
      return problem(response, fault.status, 'Scripted fault', `scripted ${fault.status}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      log(400, 0);
      return problem(response, 400, 'Bad Request', 'body is not JSON');
    }
    let events: unknown[];
    if (contentType === BATCH) {
      if (!Array.isArray(parsed)) {
        log(400, 0);
        return problem(response, 400, 'Bad Request', 'a batch must be a JSON array of CloudEvents');
      }
      events = parsed;
    } else if (contentType === SINGLE) {
      events = [parsed];
    } else {
      log(415, 0);
      return problem(response, 415, 'Unsupported Media Type', `content type ${contentType || '(none)'}`);
    }
    for (const [index, event] of events.entries()) {
      const reason = invalidReason(event);
      if (reason) {
        log(400, events.length);
        const id = (event as CloudEventLike | null)?.id;
        return problem(
          response,
          400,
          'Bad Request',
          `invalid event at index ${index} (id ${String(id)}): ${reason}`,
        );
      }
    }
    for (const event of events as CloudEventLike[]) {
      if (this.dedupe.admit(`${String(event.source)}\u0000${String(event.id)}`)) this.events.push(event);
    }
    log(204, events.length);
    response.writeHead(204).end();
  }
}

/** The events a body carries (a batch or one event), or none when it is not JSON. */
function rawEvents(body: string): CloudEventLike[] {
  try {
    const parsed = JSON.parse(body) as unknown;
    const list = Array.isArray(parsed) ? parsed : [parsed];
    return list.filter((e): e is CloudEventLike => typeof e === 'object' && e !== null);
  } catch {
    return [];
  }
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function problem(response: ServerResponse, status: number, title: string, detail: string): void {
  response
    .writeHead(status, { 'content-type': 'application/problem+json' })
    .end(JSON.stringify({ type: 'about:blank', title, status, detail }));
}
