import { env, schemas } from '../config/env.js';
import { COMPATIBILITY_LEVELS, DEFAULT_SCHEMA_COMPATIBILITY } from './registry.js';

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
