import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, loadMigrateCommandConfig } from '../src/config.js';

const base = {
  KAFKA_BROKERS: 'localhost:9092',
  SCHEMA_REGISTRY_URL: 'http://localhost:8081',
  CLICKHOUSE_URL: 'http://localhost:8123',
};

describe('sink configuration', () => {
  it('has defaults for batching and the database', () => {
    const config = loadConfig(base);
    expect(config).toMatchObject({
      batchMaxRows: 5000,
      batchMaxWaitMs: 2000,
      clickhouseDatabase: 'gpu_meter',
    });
  });

  it('names a bad batching variable', () => {
    expect(() => loadConfig({ ...base, BATCH_MAX_ROWS: '0' })).toThrow(/BATCH_MAX_ROWS/);
    expect(() => loadConfig({ ...base, BATCH_MAX_WAIT_MS: 'soon' })).toThrow(/BATCH_MAX_WAIT_MS/);
  });

  it('never echoes the ClickHouse password in an error', () => {
    const both = () =>
      loadConfig({ ...base, CLICKHOUSE_PASSWORD: 'pw-123-secret', CLICKHOUSE_PASSWORD_FILE: '/nope' });
    expect(both).toThrow(/CLICKHOUSE_PASSWORD/);
    expect(both).not.toThrow(/pw-123-secret/);
  });

  it('migrates at start-up as CLICKHOUSE_USER by default', () => {
    expect(loadConfig(base)).toMatchObject({
      clickhouseMigrate: true,
      clickhouseMigrationUser: undefined,
      clickhouseMigrationPassword: undefined,
    });
    expect(loadConfig({ ...base, CLICKHOUSE_MIGRATE: 'false' }).clickhouseMigrate).toBe(false);
    expect(() => loadConfig({ ...base, CLICKHOUSE_MIGRATE: 'later' })).toThrow(/CLICKHOUSE_MIGRATE/);
  });

  it('reads a migration user, its password from CLICKHOUSE_MIGRATION_PASSWORD_FILE too', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sink-config-')), 'password');
    writeFileSync(file, 'mig-pw-77\n');
    const config = loadConfig({
      ...base,
      CLICKHOUSE_MIGRATION_USER: 'migrator',
      CLICKHOUSE_MIGRATION_PASSWORD_FILE: file,
    });
    expect(config).toMatchObject({
      clickhouseMigrationUser: 'migrator',
      clickhouseMigrationPassword: 'mig-pw-77',
    });
  });

  it('names CLICKHOUSE_MIGRATION_USER when only its password is set, never echoing the password', () => {
    const orphan = () => loadConfig({ ...base, CLICKHOUSE_MIGRATION_PASSWORD: 'mig-pw-secret-9' });
    expect(orphan).toThrow(/CLICKHOUSE_MIGRATION_USER/);
    expect(orphan).not.toThrow(/mig-pw-secret-9/);
    const both = () =>
      loadConfig({
        ...base,
        CLICKHOUSE_MIGRATION_PASSWORD: 'mig-pw-secret-9',
        CLICKHOUSE_MIGRATION_PASSWORD_FILE: '/x',
      });
    expect(both).toThrow(/CLICKHOUSE_MIGRATION_PASSWORD/);
    expect(both).not.toThrow(/mig-pw-secret-9/);
  });

  it('checks the ClickHouse TLS files at start-up: readable, https only, naming the variable', () => {
    const ca = join(mkdtempSync(join(tmpdir(), 'sink-config-')), 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n');
    const https = { ...base, CLICKHOUSE_URL: 'https://ch.example:8443' };
    expect(loadConfig({ ...https, CLICKHOUSE_CA_FILE: ca }).clickhouseCaFile).toBe(ca);
    expect(() => loadConfig({ ...https, CLICKHOUSE_CA_FILE: `${ca}.missing` })).toThrow(
      /CLICKHOUSE_CA_FILE: cannot read/,
    );
    expect(() => loadConfig({ ...base, CLICKHOUSE_CA_FILE: ca })).toThrow(
      /CLICKHOUSE_CA_FILE: is set but CLICKHOUSE_URL is not https:\/\//,
    );
    expect(() => loadConfig({ ...https, CLICKHOUSE_CA_FILE: ca, CLICKHOUSE_CERT_FILE: ca })).toThrow(
      /CLICKHOUSE_KEY_FILE: mutual TLS needs both files/,
    );
  });

  it('the migrate command needs only the ClickHouse variables, under the same rules', () => {
    const config = loadMigrateCommandConfig({
      CLICKHOUSE_URL: 'http://localhost:8123',
      CLICKHOUSE_MIGRATION_USER: 'm',
    });
    expect(config).toMatchObject({ clickhouseDatabase: 'gpu_meter', clickhouseMigrationUser: 'm' });
    expect(() =>
      loadMigrateCommandConfig({
        CLICKHOUSE_URL: 'http://localhost:8123',
        CLICKHOUSE_MIGRATION_PASSWORD: 'p',
      }),
    ).toThrow(/CLICKHOUSE_MIGRATION_USER/);
  });
});
