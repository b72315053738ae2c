import { env, readConfig, schemas, type ConfigOf } from '@gpu-meter/kit/config';
import { opsConfigSpec } from '@gpu-meter/kit/runtime';
import { kafkaConfigSpec, registryConfigSpec } from '@gpu-meter/kit/kafka';
import { usageEventsConsumerConfigSpec, usageSinkRetryConfigSpec } from '@gpu-meter/kit/runners/usage-sink';

export const SERVICE_NAME = 'openmeter-forwarder';

export const configSpec = {
  ...kafkaConfigSpec,
  ...registryConfigSpec,
  ...opsConfigSpec,
  ...usageEventsConsumerConfigSpec(
    SERVICE_NAME,
    {
      topic: 'usage.openmeter-dead-letters.v1',
      doc: 'Where events OpenMeter rejects (400) or that cannot be decoded go, with the reason in headers.',
    },
    {
      // OpenMeter may not dedupe: a new group (or offsets expired) must not post the billing history again.
      fromBeginning: false,
      fromBeginningDoc:
        'With no committed offset (a new group id, or offsets expired), start at the oldest event (true: a deliberate backfill, needs OpenMeter dedupe) or at the end (false).',
    },
  ),
  openmeterUrl: env('OPENMETER_URL', schemas.url(), 'OpenMeter base URL; events go to <url>/api/v1/events.'),
  openmeterToken: env('OPENMETER_TOKEN', schemas.optionalString(), 'OpenMeter API token (Bearer).', {
    secret: true,
  }),
  eventType: env(
    'OPENMETER_EVENT_TYPE',
    schemas.nonEmpty('gpu-usage'),
    "CloudEvent `type` (the meter's event type).",
  ),
  eventSource: env(
    'OPENMETER_SOURCE',
    schemas.optionalString(),
    'CloudEvent `source`; default gpu-meter/<clusterId of the event>. Keep it stable: OpenMeter dedupes on (source, id).',
  ),
  subjectMap: env(
    'OPENMETER_SUBJECT_MAP',
    schemas.stringMap(),
    'JSON object mapping gpu-meter subjects to OpenMeter subjects; unmapped subjects pass unchanged.',
  ),
  batchMaxEvents: env('BATCH_MAX_EVENTS', schemas.int(500, 1, 100_000), 'CloudEvents per POST.'),
  batchMaxWaitMs: env(
    'BATCH_MAX_WAIT_MS',
    schemas.int(1000, 1, 3_600_000),
    'Longest a consumed event waits before its batch is sent.',
  ),
  requestTimeoutMs: env('OPENMETER_TIMEOUT_MS', schemas.int(10_000, 1), 'Timeout of one POST.'),
  ...usageSinkRetryConfigSpec('OpenMeter', { initialMs: 500, maxMs: 60_000 }),
  retryAfterMaxMs: env(
    'RETRY_AFTER_MAX_MS',
    schemas.int(300_000, 0),
    'Cap on a Retry-After the server asks for.',
  ),
  breakerRejectPercent: env(
    'OPENMETER_BREAKER_REJECT_PERCENT',
    schemas.int(50, 1, 100),
    'A batch with more than this percentage of its events rejected (400/413) is mostly rejected.',
  ),
  breakerMinEvents: env(
    'OPENMETER_BREAKER_MIN_EVENTS',
    schemas.int(10, 1),
    'A mostly rejected batch of at least this many events is an outage: nothing dead-lettered, retried, not ready.',
  ),
  breakerConsecutiveBatches: env(
    'OPENMETER_BREAKER_CONSECUTIVE_BATCHES',
    schemas.int(3, 1),
    'This many held attempts in a row (rejected events not yet proven bad: held, not dead-lettered) open the breaker too.',
  ),
} as const;

export type ForwarderConfig = ConfigOf<typeof configSpec>;

export function loadConfig(source: Record<string, string | undefined> = process.env): ForwarderConfig {
  return readConfig(configSpec, source);
}
