import { env, requireWhen, schemas } from './config.js';
import { COMPATIBILITY_LEVELS, DEFAULT_SCHEMA_COMPATIBILITY } from './registry.js';
import { DEFAULT_TOPICS } from './topics.js';

/** Connection settings every Kafka-speaking service shares. */
export const kafkaConfigSpec = {
  kafkaBrokers: env('KAFKA_BROKERS', schemas.list(), 'Comma-separated Kafka bootstrap brokers (host:port).'),
  kafkaClientId: env(
    'KAFKA_CLIENT_ID',
    schemas.optionalString(),
    'Kafka client id; defaults to the service name.',
  ),
  kafkaSaslMechanism: env(
    'KAFKA_SASL_MECHANISM',
    schemas.oneOf(['none', 'plain', 'scram-sha-256', 'scram-sha-512'], 'none'),
    'SASL mechanism: none, plain, scram-sha-256 or scram-sha-512.',
  ),
  kafkaSaslUsername: env('KAFKA_SASL_USERNAME', schemas.optionalString(), 'SASL username.'),
  kafkaSaslPassword: env('KAFKA_SASL_PASSWORD', schemas.optionalString(), 'SASL password.', { secret: true }),
  kafkaTls: env('KAFKA_TLS', schemas.bool(false), 'Connect to Kafka over TLS.'),
  kafkaTlsCaFile: env(
    'KAFKA_TLS_CA_FILE',
    schemas.optionalString(),
    'PEM file of CAs to trust for Kafka TLS.',
  ),
  kafkaTlsCertFile: env(
    'KAFKA_TLS_CERT_FILE',
    schemas.optionalString(),
    'PEM client certificate for mutual TLS (with KAFKA_TLS_KEY_FILE).',
  ),
  kafkaTlsKeyFile: env(
    'KAFKA_TLS_KEY_FILE',
    schemas.optionalString(),
    'PEM private key of the client certificate for mutual TLS.',
  ),
  kafkaAllowPlaintextSasl: env(
    'KAFKA_ALLOW_PLAINTEXT_SASL',
    schemas.bool(false),
    'Allow SASL without TLS (its credentials then cross the network unencrypted): only for a trusted local network.',
  ),
} as const;

export const registryConfigSpec = {
  schemaRegistryUrl: env(
    'SCHEMA_REGISTRY_URL',
    schemas.url(),
    'Confluent-compatible schema registry base URL (Apicurio: http://host:8080/apis/ccompat/v7).',
  ),
  schemaRegistryUsername: env(
    'SCHEMA_REGISTRY_USERNAME',
    schemas.optionalString(),
    'Registry basic-auth user.',
  ),
  schemaRegistryPassword: env(
    'SCHEMA_REGISTRY_PASSWORD',
    schemas.optionalString(),
    'Registry basic-auth password.',
    {
      secret: true,
    },
  ),
  schemaCompatibility: env(
    'SCHEMA_COMPATIBILITY',
    schemas.oneOf([...COMPATIBILITY_LEVELS, 'none'], DEFAULT_SCHEMA_COMPATIBILITY),
    `Compatibility rule given to a subject that has none of its own (${COMPATIBILITY_LEVELS.join(', ')}); ` +
      'an existing rule is never replaced. `none`: write no rule (the registry default applies), so the ' +
      'service needs no write access to the registry config.',
  ),
} as const;

export const opsConfigSpec = {
  opsPort: env(
    'OPS_PORT',
    schemas.int(9464, 0, 65535),
    'Port of /healthz, /readyz and /metrics (0 = any free port).',
  ),
  opsHost: env('OPS_HOST', schemas.nonEmpty('0.0.0.0'), 'Address the ops server listens on.'),
  logLevel: env(
    'LOG_LEVEL',
    schemas.oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    'Log level.',
  ),
} as const;

/**
 * Where the Kubernetes API is: K8S_API_URL (a plain http(s) API such as the simulator's, no auth), else a
 * KUBECONFIG file, else in-cluster service-account credentials (or ~/.kube/config outside a cluster).
 */
export const kubernetesConfigSpec = {
  k8sApiUrl: env(
    'K8S_API_URL',
    schemas
      .optionalString()
      .refine(
        (value) => value === undefined || (URL.canParse(value) && /^https?:/.test(value)),
        'must be an http(s) URL',
      ),
    'Kubernetes API base URL without credentials (tests, kubectl proxy). Takes precedence over KUBECONFIG.',
  ),
  kubeconfig: env(
    'KUBECONFIG',
    schemas.optionalString(),
    'Path of a kubeconfig file; when neither this nor K8S_API_URL is set, in-cluster credentials are used.',
  ),
} as const;

/**
 * How the collectors keep their pod and node watches honest, in sampling intervals (both collectors alike: a
 * hung watch bounds what either can bill to an ended pod). `watchCacheOptions` turns them into the
 * `ClusterCache` options; `checkWatchFreshness` checks them at start-up.
 */
export const watchFreshnessConfigSpec = {
  watchRelistIntervals: env(
    'WATCH_RELIST_INTERVALS',
    schemas.int(4, 1),
    'Relist pods and nodes every this many sampling intervals: proves a quiet watch current (Kubernetes sends no bookmarks unasked) and repairs one that hangs silently; bounds what a hung watch can over-bill.',
  ),
  watchStaleIntervals: env(
    'WATCH_STALE_INTERVALS',
    schemas.int(6, 2),
    'With no watch event, bookmark or list for this many sampling intervals (or a failed watch or list) the watches count as stale (not ready; the runai-collector skips grid points and backfills them once fresh). Above WATCH_RELIST_INTERVALS.',
  ),
} as const;

export interface WatchFreshness {
  readonly watchRelistIntervals: number;
  readonly watchStaleIntervals: number;
  readonly samplingIntervalMs: number;
}

/** For a collector's `loadConfig`: stale must lie above relist, else a quiet healthy watch turns stale. */
export function checkWatchFreshness(config: WatchFreshness): void {
  requireWhen(
    config.watchStaleIntervals <= config.watchRelistIntervals,
    'WATCH_STALE_INTERVALS',
    `must be above WATCH_RELIST_INTERVALS (${config.watchRelistIntervals}): a quiet watch is proved fresh only by a relist`,
  );
}

export function watchCacheOptions(config: WatchFreshness): { relistMs: number; staleAfterMs: number } {
  return {
    relistMs: config.watchRelistIntervals * config.samplingIntervalMs,
    staleAfterMs: config.watchStaleIntervals * config.samplingIntervalMs,
  };
}

/**
 * What every consumer of usage events (the ClickHouse sink, the OpenMeter forwarder) reads alike: the topic,
 * its own dead-letter topic, the consumer group and how it joins.
 */
export function usageEventsConsumerConfigSpec(
  service: string,
  deadLetters: { topic: string; doc: string },
  start: { fromBeginning: boolean; fromBeginningDoc: string } = {
    fromBeginning: true,
    fromBeginningDoc: 'With no committed offset, start at the oldest event (true) or only new ones.',
  },
) {
  return {
    usageEventsTopic: env(
      'USAGE_EVENTS_TOPIC',
      schemas.nonEmpty(DEFAULT_TOPICS.usageEvents),
      'Topic to read.',
    ),
    deadLetterTopic: env('DEAD_LETTER_TOPIC', schemas.nonEmpty(deadLetters.topic), deadLetters.doc),
    topicReplicationFactor: env(
      'TOPIC_REPLICATION_FACTOR',
      schemas.int(1, 1),
      'Replication factor of the dead-letter topic when this service creates it.',
    ),
    consumerGroup: env('CONSUMER_GROUP_ID', schemas.nonEmpty(service), 'Kafka consumer group id.'),
    sessionTimeoutMs: env(
      'SESSION_TIMEOUT_MS',
      schemas.int(30_000, 6_000, 300_000),
      "Consumer group session timeout: how soon a dead replica's partitions move to the others.",
    ),
    fromBeginning: env('CONSUME_FROM_BEGINNING', schemas.bool(start.fromBeginning), start.fromBeginningDoc),
  } as const;
}
