import { createLogger, exitOnStartupError, retryWhileRetriable } from '@gpu-meter/kit/runtime';
import { ClickHouse, isClickHouseRetriable } from '@gpu-meter/kit/clickhouse';
import { loadMigrateCommandConfig, type MigrateCommandConfig } from './config.js';
import { MIGRATIONS } from './migrations.js';
import { prepareSchema } from './migrator.js';

/**
 * The migrate-only command, for a job that migrates before (or beside) sinks started with
 * CLICKHOUSE_MIGRATE=false: applies the pending migrations as CLICKHOUSE_MIGRATION_USER (else
 * CLICKHOUSE_USER) and exits 0. Waits for ClickHouse while it is unreachable; exits 1 on anything a retry
 * cannot fix (a bad variable, a user that may not run DDL).
 */
let config: MigrateCommandConfig;
try {
  config = loadMigrateCommandConfig();
} catch (error) {
  exitOnStartupError(undefined, error);
}
const logger = createLogger('clickhouse-sink-migrate', config.logLevel);
const clickhouse = new ClickHouse(config);
try {
  const applied = await retryWhileRetriable(
    `ClickHouse migrations (database ${config.clickhouseDatabase})`,
    () => prepareSchema({ ...config, clickhouseMigrate: true }, clickhouse, MIGRATIONS, logger),
    { logger, retriable: isClickHouseRetriable },
  );
  logger.info({ database: config.clickhouseDatabase, applied }, 'migrations done');
} catch (error) {
  await clickhouse.close();
  exitOnStartupError(logger, error);
}
await clickhouse.close();
