import { deterministicId, errorMessage, GpuMeterError } from '@gpu-meter/kit/contracts';
import type { Logger } from '@gpu-meter/kit/runtime';
import { ClickHouse, clickhouseErrorCode, quote, quoteIdentifier } from '@gpu-meter/kit/clickhouse';
import { MIGRATE_COMMAND, type MigrateCommandConfig } from './config.js';
import type { Migration } from './migrations.js';

export interface AppliedMigration {
  version: number;
  checksum: string;
}

export function migrationChecksum(migration: Migration): string {
  return deterministicId(...migration.statements).slice(0, 16);
}

/** Pure plan: which migrations to run (in version order) and which released ones were edited since. */
export function planMigrations(
  migrations: readonly Migration[],
  applied: readonly AppliedMigration[],
): { pending: Migration[]; changed: Migration[] } {
  const versions = migrations.map((migration) => migration.version);
  if (new Set(versions).size !== versions.length) throw new Error('duplicate migration version');
  const done = new Map(applied.map((entry) => [entry.version, entry.checksum]));
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  return {
    pending: sorted.filter((migration) => !done.has(migration.version)),
    changed: sorted.filter(
      (migration) =>
        done.has(migration.version) && done.get(migration.version) !== migrationChecksum(migration),
    ),
  };
}

export function renderStatement(statement: string, database: string): string {
  return statement.replaceAll('{db}', quoteIdentifier(database));
}

/**
 * Applies pending migrations and records each in `schema_migrations`. Two replicas starting together may
 * both run a migration: its statements are idempotent (IF NOT EXISTS) and the table is a ReplacingMergeTree
 * on the version, so the outcome is the same as one run.
 */
export async function migrate(
  clickhouse: ClickHouse,
  migrations: readonly Migration[],
  logger: Logger,
): Promise<number[]> {
  const db = quoteIdentifier(clickhouse.database);
  await clickhouse.command(`CREATE DATABASE IF NOT EXISTS ${db}`);
  await clickhouse.command(
    `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (version UInt32, name String, checksum String, ` +
      `applied_at DateTime('UTC')) ENGINE = ReplacingMergeTree(applied_at) ORDER BY version`,
  );
  const plan = planMigrations(migrations, await appliedMigrations(clickhouse));
  for (const migration of plan.changed) {
    logger.warn(
      { version: migration.version, name: migration.name },
      'an applied migration was edited after release; add a new migration instead',
    );
  }
  for (const migration of plan.pending) {
    for (const statement of migration.statements) {
      await clickhouse.command(renderStatement(statement, clickhouse.database));
    }
    await clickhouse.command(
      `INSERT INTO ${db}.schema_migrations (version, name, checksum, applied_at) VALUES ` +
        `(${migration.version}, ${quote(migration.name)}, ${quote(migrationChecksum(migration))}, now())`,
    );
    logger.info({ version: migration.version, name: migration.name }, 'migration applied');
  }
  return plan.pending.map((migration) => migration.version);
}

/** ClickHouse codes saying the user may not run DDL: QUERY_IS_PROHIBITED (allow_ddl = 0), READONLY, ACCESS_DENIED. */
const NO_DDL_CODES = new Set([392, 164, 497]);
/** UNKNOWN_TABLE, UNKNOWN_DATABASE: schema_migrations is not there (nothing migrated yet). */
const NOT_MIGRATED_CODES = new Set([60, 81]);

const firstLine = (error: unknown) => errorMessage(error).split('\n')[0]!.trim();

/** The migrations recorded in `schema_migrations`; none when the table or the database does not exist. */
export async function appliedMigrations(clickhouse: ClickHouse): Promise<AppliedMigration[]> {
  try {
    const rows = await clickhouse.query<{ version: number | string; checksum: string }>(
      `SELECT version, any(checksum) AS checksum FROM ${quoteIdentifier(clickhouse.database)}.schema_migrations ` +
        'GROUP BY version',
    );
    return rows.map((row) => ({ version: Number(row.version), checksum: row.checksum }));
  } catch (error) {
    const code = clickhouseErrorCode(error);
    if (code !== undefined && NOT_MIGRATED_CODES.has(code)) return [];
    throw error;
  }
}

/**
 * For CLICKHOUSE_MIGRATE=false: runs no DDL, only checks that every migration this sink knows is recorded
 * (later ones, from a newer release, are fine). A missing one is a non-retriable error naming the command
 * that applies it; an edited one is logged as `migrate` does.
 */
export async function requireSchema(
  clickhouse: ClickHouse,
  migrations: readonly Migration[],
  logger: Logger,
): Promise<void> {
  const plan = planMigrations(migrations, await appliedMigrations(clickhouse));
  for (const migration of plan.changed) {
    logger.warn(
      { version: migration.version, name: migration.name },
      'an applied migration differs from this release (edited after release?)',
    );
  }
  if (plan.pending.length === 0) return;
  const missing = plan.pending.map((migration) => `${migration.version} (${migration.name})`).join(', ');
  throw new GpuMeterError(
    'STARTUP_FAILED',
    `database ${clickhouse.database} lacks schema migration(s) ${missing} and CLICKHOUSE_MIGRATE=false ` +
      `forbids running them here: run \`${MIGRATE_COMMAND}\` with the same CLICKHOUSE_* variables ` +
      '(CLICKHOUSE_MIGRATION_USER naming a user allowed DDL), or start the sink with CLICKHOUSE_MIGRATE=true',
  );
}

/** `migrate`, with a user that may not run DDL turned into a non-retriable error saying what to set. */
export async function migrateAs(
  clickhouse: ClickHouse,
  migrations: readonly Migration[],
  logger: Logger,
  userVariable: 'CLICKHOUSE_USER' | 'CLICKHOUSE_MIGRATION_USER',
): Promise<number[]> {
  try {
    return await migrate(clickhouse, migrations, logger);
  } catch (error) {
    const code = clickhouseErrorCode(error);
    if (code === undefined || !NO_DDL_CODES.has(code)) throw error;
    const fix =
      userVariable === 'CLICKHOUSE_USER'
        ? 'set CLICKHOUSE_MIGRATION_USER (and CLICKHOUSE_MIGRATION_PASSWORD) to a user allowed DDL, or ' +
          `migrate in a separate job (\`${MIGRATE_COMMAND}\`) and set CLICKHOUSE_MIGRATE=false`
        : 'give it DDL rights on the database, or name another user in CLICKHOUSE_MIGRATION_USER';
    throw new GpuMeterError(
      'STARTUP_FAILED',
      `ClickHouse user ${clickhouse.user} (${userVariable}) may not run the migrations' DDL ` +
        `(${firstLine(error)}): ${fix}`,
      { cause: error },
    );
  }
}

/**
 * The sink's schema step. CLICKHOUSE_MIGRATE=false: check only. Else migrate, as CLICKHOUSE_MIGRATION_USER
 * through a client of its own (closed after, so the sink keeps no DDL-capable connection), or as the
 * everyday user when none is set.
 */
export async function prepareSchema(
  config: MigrateCommandConfig,
  clickhouse: ClickHouse,
  migrations: readonly Migration[],
  logger: Logger,
): Promise<number[]> {
  if (!config.clickhouseMigrate) {
    await requireSchema(clickhouse, migrations, logger);
    return [];
  }
  if (config.clickhouseMigrationUser === undefined)
    return migrateAs(clickhouse, migrations, logger, 'CLICKHOUSE_USER');
  const migrator = new ClickHouse(
    {
      ...config,
      clickhouseUser: config.clickhouseMigrationUser,
      clickhousePassword: config.clickhouseMigrationPassword,
    },
    clickhouse.database,
  );
  try {
    return await migrateAs(migrator, migrations, logger, 'CLICKHOUSE_MIGRATION_USER');
  } finally {
    await migrator.close();
  }
}
