import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

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
});
