import { GpuMeterError } from '@gpu-meter/kit/contracts';
import { createLogger } from '@gpu-meter/kit/runtime';
import { isClickHouseRetriable, type ClickHouse } from '@gpu-meter/kit/clickhouse';
import { describe, expect, it } from 'vitest';
import { loadMigrateCommandConfig, MIGRATE_COMMAND } from '../src/config.js';
import { chargebackViews, CHARGEBACK_DIMENSIONS, MIGRATIONS } from '../src/migrations.js';
import {
  migrateAs,
  migrationChecksum,
  planMigrations,
  prepareSchema,
  renderStatement,
  requireSchema,
  type AppliedMigration,
} from '../src/migrator.js';

describe('planMigrations', () => {
  it('runs every migration on an empty database, in version order', () => {
    const plan = planMigrations([...MIGRATIONS].reverse(), []);
    expect(plan.pending.map((m) => m.version)).toEqual([1, 2]);
    expect(plan.changed).toEqual([]);
  });

  it('runs each migration once: applied versions are not pending', () => {
    const applied = MIGRATIONS.map((m) => ({ version: m.version, checksum: migrationChecksum(m) }));
    expect(planMigrations(MIGRATIONS, applied).pending).toEqual([]);
    expect(planMigrations(MIGRATIONS, applied.slice(0, 1)).pending.map((m) => m.version)).toEqual([2]);
  });

  it('reports a released migration whose statements were edited', () => {
    const plan = planMigrations(MIGRATIONS, [{ version: 1, checksum: 'something-else' }]);
    expect(plan.changed.map((m) => m.version)).toEqual([1]);
  });

  it('refuses two migrations with one version', () => {
    expect(() => planMigrations([MIGRATIONS[0]!, MIGRATIONS[0]!], [])).toThrow(/duplicate/);
  });
});

describe('migration SQL', () => {
  const statements = MIGRATIONS.flatMap((m) => m.statements);

  it('is idempotent statement by statement (safe when two replicas start together)', () => {
    for (const sql of statements) expect(sql).toMatch(/^\s*CREATE (TABLE|VIEW) IF NOT EXISTS /);
  });

  it('uses nothing ClickHouse 18.16 lacks', () => {
    for (const sql of statements) {
      expect(sql).not.toMatch(/\{[a-z_]+:[A-Za-z]/); // query parameters
      expect(sql).not.toMatch(/DateTime64|insert_deduplication_token|async_insert/);
    }
  });

  it('reads every chargeback view through FINAL, so totals are deduplicated before merges', () => {
    for (const view of chargebackViews()) expect(view.sql).toContain('usage_events FINAL');
  });

  it('has a daily and a monthly view per chargeback dimension', () => {
    const names = chargebackViews().map((view) => view.name);
    for (const dimension of CHARGEBACK_DIMENSIONS) {
      expect(names).toContain(`chargeback_${dimension}_daily`);
      expect(names).toContain(`chargeback_${dimension}_monthly`);
    }
  });

  it('renders the database as a quoted identifier and refuses anything else', () => {
    expect(renderStatement('SELECT 1 FROM {db}.t', 'gpu_meter')).toBe('SELECT 1 FROM `gpu_meter`.t');
    expect(() => renderStatement('SELECT 1 FROM {db}.t', 'x; DROP')).toThrow();
  });
});

describe('schema step without DDL rights', () => {
  const logger = createLogger('test', 'silent');
  const ddlRefused = new Error(
    'Code: 392, e.displayText() = DB::Exception: Cannot create database. DDL queries are prohibited for the user, e.what() = DB::Exception\n',
  );
  /** Answers schema_migrations queries with `applied` (or throws `queryError`); every command throws `commandError`. */
  function fakeClickHouse(options: {
    applied?: AppliedMigration[];
    queryError?: Error;
    commandError?: Error;
  }) {
    return {
      database: 'gpu_meter',
      user: 'writer',
      query: () =>
        options.queryError ? Promise.reject(options.queryError) : Promise.resolve(options.applied ?? []),
      command: () => (options.commandError ? Promise.reject(options.commandError) : Promise.resolve()),
    } as unknown as ClickHouse;
  }
  /** The error a promise rejects with (fails the test if it resolves). */
  const rejection = (promise: Promise<unknown>): Promise<Error> =>
    promise.then(
      () => {
        throw new Error('resolved, expected a rejection');
      },
      (error: unknown) => error as Error,
    );
  const allApplied = MIGRATIONS.map((m) => ({ version: m.version, checksum: migrationChecksum(m) }));

  it('migrating as a user that may not run DDL fails, not retriable, naming the two ways out', async () => {
    const error = await rejection(
      migrateAs(fakeClickHouse({ commandError: ddlRefused }), MIGRATIONS, logger, 'CLICKHOUSE_USER'),
    );
    expect(error).toBeInstanceOf(GpuMeterError);
    expect(isClickHouseRetriable(error)).toBe(false);
    expect(error.message).toMatch(/user writer \(CLICKHOUSE_USER\) may not run the migrations' DDL/);
    expect(error.message).toMatch(/DDL queries are prohibited/);
    expect(error.message).toMatch(/CLICKHOUSE_MIGRATION_USER/);
    expect(error.message).toMatch(/CLICKHOUSE_MIGRATE=false/);
    expect(error.message).toContain(MIGRATE_COMMAND);
  });

  it('with CLICKHOUSE_MIGRATE=false, an unmigrated database stops the sink naming the command to run', async () => {
    const unknownDatabase = new Error(
      "Code: 81, e.displayText() = DB::Exception: Database gpu_meter doesn't exist, e.what() = DB::Exception",
    );
    for (const clickhouse of [
      fakeClickHouse({ queryError: unknownDatabase }),
      fakeClickHouse({ applied: allApplied.slice(0, 1) }),
    ]) {
      const error = await rejection(requireSchema(clickhouse, MIGRATIONS, logger));
      expect(error).toBeInstanceOf(GpuMeterError);
      expect(isClickHouseRetriable(error)).toBe(false);
      expect(error.message).toMatch(/database gpu_meter lacks schema migration\(s\) (1 .*, )?2 \(/);
      expect(error.message).toContain(MIGRATE_COMMAND);
    }
  });

  it('with CLICKHOUSE_MIGRATE=false and the schema in place, it runs no statement at all', async () => {
    const clickhouse = fakeClickHouse({ applied: allApplied, commandError: ddlRefused });
    const config = loadMigrateCommandConfig({ CLICKHOUSE_URL: 'http://x:8123', CLICKHOUSE_MIGRATE: 'false' });
    await expect(prepareSchema(config, clickhouse, MIGRATIONS, logger)).resolves.toEqual([]);
  });

  it('an outage while checking stays retriable', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
    const error = await rejection(requireSchema(fakeClickHouse({ queryError: refused }), MIGRATIONS, logger));
    expect(error).toBe(refused);
    expect(isClickHouseRetriable(error)).toBe(true);
  });
});
