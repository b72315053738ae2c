import { DEFAULT_TOPICS } from '@gpu-meter/kit/contracts';
import { env, readConfig, requireWhen, schemas, type ConfigOf } from '@gpu-meter/kit/config';
import { checkWatchFreshness } from '@gpu-meter/kit/kubernetes';
import { collectorBufferConfigSpec, collectorConfigSpec } from '@gpu-meter/kit/runners/collector';

export const SERVICE_NAME = 'runai-collector';

export const configSpec = {
  ...collectorConfigSpec({
    clusterId:
      "Cluster id, in every sample id and key. A pod's own clusterId annotation is ignored: its tenant can write it.",
    samplingInterval: 'Grid interval: a sample at t covers [t - interval, t).',
    sampleDelay:
      'How long after a grid point it is sampled, so status updates up to t have arrived. Below the interval.',
  }),
  topic: env('POD_ALLOCATIONS_TOPIC', schemas.nonEmpty(DEFAULT_TOPICS.podAllocations), 'Output topic.'),
  projectDepartments: env('PROJECT_DEPARTMENTS', schemas.stringMap(), 'JSON map project -> department.'),
  projectCustomers: env(
    'PROJECT_CUSTOMERS',
    schemas.stringMap(),
    'JSON map project -> billing customer (subject); unmapped projects are their own subject.',
  ),
  fallbackSubject: env(
    'FALLBACK_SUBJECT',
    schemas.nonEmpty('unattributed'),
    'Subject billed for Run:ai pods with no project (label project, namespace runai-<p>, label runai/queue).',
  ),
  backfillMaxMs: env(
    'BACKFILL_MAX_MS',
    schemas.int(300_000, 0),
    "On start, re-publish grid points of visible pods (completed included) up to this far back. Keep it at or below the aggregator's DEDUPE_RETENTION_MS: older re-published points are no longer recognised as duplicates (late-topic: recorded as late; correction: billed twice).",
  ),
  ...collectorBufferConfigSpec,
} as const;

export type Config = ConfigOf<typeof configSpec>;

export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const config = readConfig(configSpec, source);
  requireWhen(
    config.sampleDelayMs >= config.samplingIntervalMs,
    'SAMPLE_DELAY_MS',
    `must be below SAMPLING_INTERVAL_MS (${config.samplingIntervalMs})`,
  );
  checkWatchFreshness(config);
  return config;
}
