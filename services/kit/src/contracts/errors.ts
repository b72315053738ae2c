/**
 * The error catalogue. Every error gpu-meter raises on purpose carries a stable code (GPUM_*), says whether
 * retrying can help, and keeps its cause, so the next stage knows whether to back off, dead-letter or stop.
 */
export const ErrorCodes = {
  CONFIG_INVALID: {
    code: 'GPUM_CONFIG_INVALID',
    retriable: false,
    meaning: 'A variable is missing or invalid: the service stops at start-up, naming it.',
  },
  DECODE_FAILED: {
    code: 'GPUM_DECODE_FAILED',
    retriable: false,
    meaning:
      'A record is not Avro of a schema the registry knows: dead-lettered. After a registry outage that proved to be one, `npm run replay` re-delivers it.',
  },
  VALIDATION_FAILED: {
    code: 'GPUM_VALIDATION_FAILED',
    retriable: false,
    meaning:
      'A decoded sample breaks a rule (its span, an amount, dated too far ahead of the broker clock): dead-lettered with the reason.',
  },
  SCHEMA_INCOMPATIBLE: {
    code: 'GPUM_SCHEMA_INCOMPATIBLE',
    retriable: false,
    meaning: "The registry refused a schema under the subject's compatibility rule: the start-up stops.",
  },
  SCHEMA_REGISTRY: {
    code: 'GPUM_SCHEMA_REGISTRY',
    retriable: true,
    meaning:
      "The schema registry failed, did not answer, or does not know a schema id while it fails the control look-up of the topic's own subject too (an outage or lost storage, not a poison record): retried, not ready meanwhile.",
  },
  ILLEGAL_STATE: {
    code: 'GPUM_ILLEGAL_STATE',
    retriable: false,
    meaning: 'A call the code forbids (a bug), for example a serde used before its schema was registered.',
  },
  OFFSET_METADATA_INVALID: {
    code: 'GPUM_OFFSET_METADATA_INVALID',
    retriable: false,
    meaning:
      'Committed offsets of the aggregator\'s group lack valid metadata: the task refuses to guess and the service stops (usage-aggregator DESIGN.md, "Restore refuses to guess").',
  },
  SINK_UNAVAILABLE: {
    code: 'GPUM_SINK_UNAVAILABLE',
    retriable: true,
    meaning:
      'OpenMeter did not take a batch (unreachable, 5xx, 429, or most of the batch rejected: the breaker): the batch is sent again after a back-off.',
  },
  SINK_REJECTED: {
    code: 'GPUM_SINK_REJECTED',
    retriable: false,
    meaning: "OpenMeter refused an event for good: dead-lettered with OpenMeter's answer.",
  },
  STARTUP_FAILED: {
    code: 'GPUM_STARTUP_FAILED',
    retriable: false,
    meaning:
      'A start-up step hit an error retrying cannot fix (ClickHouse migrations pending with CLICKHOUSE_MIGRATE=false, a user without DDL rights): the service exits non-zero.',
  },
  LATE_SAMPLE: {
    code: 'GPUM_LATE_SAMPLE',
    retriable: false,
    meaning:
      'With LATE_POLICY=late-topic, a sample for a window already closed, set aside on the late-samples topic unbilled; `npm run replay` re-delivers it.',
  },
  POD_REJECTED: {
    code: 'GPUM_POD_REJECTED',
    retriable: false,
    meaning:
      'runai-collector: a pod the model rejects (`gpu-meter.reason` model_error or invalid_amount), reported on the collector dead-letter topic for each grid point it was due; a report, not a sample.',
  },
  SAMPLE_TOO_LARGE: {
    code: 'GPUM_SAMPLE_TOO_LARGE',
    retriable: false,
    meaning:
      "A collector sample larger than the broker takes even alone: dead-lettered (its bytes left out when they do not fit either), the collector's other samples go on.",
  },
  SAMPLE_IDENTITY_TOO_LONG: {
    code: 'GPUM_SAMPLE_IDENTITY_TOO_LONG',
    retriable: false,
    meaning:
      'A collector sample with an identity field (a name or uid that decides who is billed) over the string cap: dead-lettered, never cut.',
  },
} as const;

export type ErrorKind = keyof typeof ErrorCodes;

export class GpuMeterError extends Error {
  readonly code: string;
  readonly retriable: boolean;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown; retriable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GpuMeterError';
    this.code = ErrorCodes[kind].code;
    this.retriable = options?.retriable ?? ErrorCodes[kind].retriable;
  }
}

/** Bad configuration: names the environment variable so the operator knows what to fix. */
export class ConfigError extends GpuMeterError {
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super('CONFIG_INVALID', `Invalid configuration: ${variable}: ${detail}`);
    this.name = 'ConfigError';
  }
}

/** A record that can never be processed (bad bytes, unknown schema, invalid values): dead-letter it. */
export class PoisonRecordError extends GpuMeterError {
  constructor(kind: 'DECODE_FAILED' | 'VALIDATION_FAILED', message: string, cause?: unknown) {
    super(kind, message, { cause });
    this.name = 'PoisonRecordError';
  }
}

/**
 * Whether trying again can help: the classification the start-up retries (`retryWhileRetriable`) use.
 * - gpu-meter's own errors say so themselves;
 * - kafkajs gives up on a retriable error after its own retries with KafkaJSNumberOfRetriesExceeded
 *   (flagged non-retriable): the cause is what counts, as kafkajs's consumer itself decides on restarts;
 * - other kafkajs errors carry `retriable` (UNKNOWN_TOPIC_OR_PARTITION right after a topic's creation is),
 *   and an aggregate of errors is retriable when each of them is;
 * - an HTTP answer (registry, ClickHouse) is retriable for 5xx, 408 and 429, not for other 4xx;
 * - ReferenceError, SyntaxError and RangeError are bugs, and so is a TypeError without a cause (undici's
 *   "fetch failed", a TypeError, has one: the connection error);
 * - anything else (ECONNREFUSED, timeouts) is taken for an outage.
 */
export function isRetriable(error: unknown): boolean {
  if (error instanceof GpuMeterError) return error.retriable;
  if (typeof error !== 'object' || error === null) return true;
  const { name, cause } = error as { name?: unknown; cause?: unknown };
  if (name === 'KafkaJSNumberOfRetriesExceeded')
    return cause === undefined || cause === error || isRetriable(cause);
  if ('retriable' in error) return Boolean((error as { retriable: unknown }).retriable);
  // KafkaJSAggregateError (createTopics: one error per topic) and AggregateError: retrying helps only if
  // it helps each (an invalid topic name would otherwise be retried forever).
  const { errors } = error as { errors?: unknown };
  if (Array.isArray(errors) && errors.length > 0) return errors.every((each) => isRetriable(each));
  const status =
    (error as { status?: unknown; statusCode?: unknown }).status ??
    (error as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && status >= 400) return status >= 500 || status === 408 || status === 429;
  if (name === 'ReferenceError' || name === 'SyntaxError' || name === 'RangeError') return false;
  if (name === 'TypeError') return cause !== undefined;
  return true;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
