import { env, readConfig, requireWhen, schemas, type ConfigOf } from '@gpu-meter/kit/config';
import { opsConfigSpec } from '@gpu-meter/kit/runtime';
import { kafkaConfigSpec, registryConfigSpec } from '@gpu-meter/kit/kafka';
import { clickhouseClientOptions, clickhouseConfigSpec } from '@gpu-meter/kit/clickhouse';
import { usageEventsConsumerConfigSpec, usageSinkRetryConfigSpec } from '@gpu-meter/kit/runners/usage-sink';

export const SERVICE_NAME = 'clickhouse-sink';

/** The command a separate migration job runs (same ClickHouse variables as the sink). */
export const MIGRATE_COMMAND = 'node --import tsx services/clickhouse-sink/src/migrate.ts';

/**
 * Who runs the migrations (DDL), and whether the sink runs them at all. Not exported: the docs generator
 * merges the exported specs in an order that differs between loaders (configSpec must come first).
 */
const migrationConfigSpec = {
  clickhouseMigrate: env(
    'CLICKHOUSE_MIGRATE',
    schemas.bool(true),
    `Run the schema migrations at start-up. false: only check the schema is at the version this sink needs ` +
      `(a separate job migrates: \`${MIGRATE_COMMAND}\`); the everyday user then needs no DDL rights.`,
  ),
  clickhouseMigrationUser: env(
    'CLICKHOUSE_MIGRATION_USER',
    schemas.optionalString(),
    'ClickHouse user that runs the migrations (DDL), through a client of its own closed after them; ' +
      'CLICKHOUSE_USER then needs only SELECT and INSERT. Unset: CLICKHOUSE_USER migrates. Not used ' +
      'when CLICKHOUSE_MIGRATE=false (the migrate command uses it).',
  ),
  clickhouseMigrationPassword: env(
    'CLICKHOUSE_MIGRATION_PASSWORD',
    schemas.optionalString(),
    'Password of CLICKHOUSE_MIGRATION_USER.',
    { secret: true },
  ),
} as const;

export const configSpec = {
  ...kafkaConfigSpec,
  ...registryConfigSpec,
  ...opsConfigSpec,
  ...clickhouseConfigSpec,
  ...migrationConfigSpec,
  ...usageEventsConsumerConfigSpec(SERVICE_NAME, {
    topic: 'usage.sink-dead-letters.v1',
    doc: 'Where undecodable usage events go, with headers naming their origin.',
  }),
  batchMaxRows: env('BATCH_MAX_ROWS', schemas.int(5000, 1, 1_000_000), 'Rows per ClickHouse insert.'),
  batchMaxWaitMs: env(
    'BATCH_MAX_WAIT_MS',
    schemas.int(2000, 1, 3_600_000),
    'Longest a consumed event waits before its batch is inserted.',
  ),
  ...usageSinkRetryConfigSpec('ClickHouse', { initialMs: 200, maxMs: 30_000 }),
} as const;

export type SinkConfig = ConfigOf<typeof configSpec>;

/** The migrate-only command's configuration: ClickHouse and who migrates, nothing of Kafka. */
export const migrateCommandConfigSpec = {
  ...clickhouseConfigSpec,
  ...migrationConfigSpec,
  logLevel: configSpec.logLevel,
} as const;

export type MigrateCommandConfig = ConfigOf<typeof migrateCommandConfigSpec>;

/**
 * Cross-field rules of the ClickHouse part, checked at start-up so a wrong combination stops the service
 * before it connects, naming the variable: the TLS files (readable, https only, cert and key together) and
 * the migration user.
 */
export function checkClickHouseConfig(config: MigrateCommandConfig): void {
  clickhouseClientOptions(config);
  requireWhen(
    config.clickhouseMigrationPassword !== undefined && config.clickhouseMigrationUser === undefined,
    'CLICKHOUSE_MIGRATION_USER',
    'is required when CLICKHOUSE_MIGRATION_PASSWORD is set',
  );
}

export function loadConfig(source: Record<string, string | undefined> = process.env): SinkConfig {
  const config = readConfig(configSpec, source);
  checkClickHouseConfig(config);
  return config;
}

export function loadMigrateCommandConfig(
  source: Record<string, string | undefined> = process.env,
): MigrateCommandConfig {
  const config = readConfig(migrateCommandConfigSpec, source);
  checkClickHouseConfig(config);
  return config;
}
