import { DEFAULT_TOPICS } from '@gpu-meter/kit/contracts';
import { env, readConfig, requireWhen, schemas, type ConfigOf } from '@gpu-meter/kit/config';
import { checkWatchFreshness } from '@gpu-meter/kit/kubernetes';
import { collectorBufferConfigSpec, collectorConfigSpec } from '@gpu-meter/kit/runners/collector';
import { parseSelector } from './targets.js';

export const SERVICE_NAME = 'bandwidth-collector';

export const configSpec = {
  ...collectorConfigSpec({
    clusterId: 'Cluster id of the scraped nodes (part of every sample id).',
    samplingInterval: 'Grid interval: the scrape after grid point t gives the rates of [t - interval, t).',
    sampleDelay:
      'How long after a grid point the exporters are scraped (pod status updates up to t must have arrived).',
  }),
  scrapeTimeoutMs: env('SCRAPE_TIMEOUT_MS', schemas.int(5_000, 1), 'Timeout of one exporter scrape.'),
  topic: env('BANDWIDTH_SAMPLES_TOPIC', schemas.nonEmpty(DEFAULT_TOPICS.bandwidthSamples), 'Output topic.'),
  dcgmEndpoints: env(
    'DCGM_ENDPOINTS',
    schemas.optionalString(),
    'Comma-separated DCGM exporter /metrics URLs scraped in addition to discovered exporter pods.',
  ),
  dcgmDiscovery: env(
    'DCGM_DISCOVERY',
    schemas.bool(true),
    'Discover exporter pods through the Kubernetes API.',
  ),
  dcgmPodSelector: env(
    'DCGM_POD_SELECTOR',
    schemas.nonEmpty('app=nvidia-dcgm-exporter'),
    'Label selector of exporter pods (k=v, k!=v, comma = and).',
  ),
  dcgmExporterNamespace: env(
    'DCGM_EXPORTER_NAMESPACE',
    schemas.nonEmpty('gpu-operator'),
    "Namespace of the exporter pods discovery scrapes (the GPU operator's). Pods matching the selector elsewhere are ignored: any tenant can label a pod; each discovered exporter's readings count only for the node it runs on.",
  ),
  dcgmMaxResponseBytes: env(
    'DCGM_MAX_RESPONSE_BYTES',
    schemas.int(16 * 2 ** 20, 1024),
    'Largest exporter page read; a larger one is abandoned unparsed (counted as scrapes{result="too_large"}, logged).',
  ),
  projectDepartments: env('PROJECT_DEPARTMENTS', schemas.stringMap(), 'JSON map project -> department.'),
  projectCustomers: env('PROJECT_CUSTOMERS', schemas.stringMap(), 'JSON map project -> billing customer.'),
  fallbackSubject: env(
    'FALLBACK_SUBJECT',
    schemas.nonEmpty('unattributed'),
    'Subject for traffic of pods with no project.',
  ),
  ...collectorBufferConfigSpec,
} as const;

export type Config = ConfigOf<typeof configSpec> & { readonly staticEndpoints: readonly string[] };

export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const config = readConfig(configSpec, source);
  requireWhen(
    config.sampleDelayMs + config.scrapeTimeoutMs >= config.samplingIntervalMs,
    'SCRAPE_TIMEOUT_MS',
    `SAMPLE_DELAY_MS + SCRAPE_TIMEOUT_MS must be below SAMPLING_INTERVAL_MS (${config.samplingIntervalMs})`,
  );
  checkWatchFreshness(config);
  const staticEndpoints = (config.dcgmEndpoints ?? '')
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url.length > 0);
  for (const url of staticEndpoints) {
    requireWhen(!(URL.canParse(url) && /^https?:/.test(url)), 'DCGM_ENDPOINTS', `not an http(s) URL: ${url}`);
  }
  requireWhen(
    staticEndpoints.length === 0 && !config.dcgmDiscovery,
    'DCGM_ENDPOINTS',
    'is required when DCGM_DISCOVERY is false',
  );
  try {
    parseSelector(config.dcgmPodSelector);
  } catch (error) {
    requireWhen(true, 'DCGM_POD_SELECTOR', (error as Error).message);
  }
  return Object.freeze({ ...config, staticEndpoints: Object.freeze(staticEndpoints) });
}
