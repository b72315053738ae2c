import { describe, expect, it } from 'vitest';
import { chargebackViews, CHARGEBACK_DIMENSIONS, MIGRATIONS } from '../src/migrations.js';
import { migrationChecksum, planMigrations, renderStatement } from '../src/migrator.js';

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
