import { deterministicId, quote, quoteIdentifier, type ClickHouse, type Logger } from '@gpu-meter/kit';
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
  const applied = await clickhouse.query<{ version: number | string; checksum: string }>(
    `SELECT version, any(checksum) AS checksum FROM ${db}.schema_migrations GROUP BY version`,
  );
  const plan = planMigrations(
    migrations,
    applied.map((row) => ({ version: Number(row.version), checksum: row.checksum })),
  );
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
