import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@gpu-meter/kit/contracts';
import { loadConfig } from '../src/config.js';

const base = {
  KAFKA_BROKERS: 'localhost:9092',
  SCHEMA_REGISTRY_URL: 'http://localhost:8081',
  OPENMETER_URL: 'https://openmeter.example.com',
};

describe('forwarder configuration', () => {
  it('has working defaults: type gpu-usage, source from the cluster, no subject mapping', () => {
    const config = loadConfig(base);
    expect(config.eventType).toBe('gpu-usage');
    expect(config.eventSource).toBeUndefined();
    expect(config.subjectMap).toEqual({});
    expect(config.deadLetterTopic).toBe('usage.openmeter-dead-letters.v1');
  });

  it('reads the token from OPENMETER_TOKEN_FILE (a mounted secret)', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'om-')), 'token');
    writeFileSync(file, 'from-a-file\n');
    expect(loadConfig({ ...base, OPENMETER_TOKEN_FILE: file }).openmeterToken).toBe('from-a-file');
  });

  it('names the variable that is missing or wrong, without echoing a secret', () => {
    expect(() => loadConfig({ ...base, OPENMETER_URL: undefined })).toThrow(/OPENMETER_URL/);
    expect(() => loadConfig({ ...base, OPENMETER_SUBJECT_MAP: '[1]' })).toThrow(ConfigError);
    const both = () => loadConfig({ ...base, OPENMETER_TOKEN: 'abc-secret', OPENMETER_TOKEN_FILE: '/x' });
    expect(both).toThrow(/OPENMETER_TOKEN/);
    expect(both).not.toThrow(/abc-secret/);
  });

  it('parses a subject map', () => {
    const config = loadConfig({ ...base, OPENMETER_SUBJECT_MAP: '{"acme":"cust-1"}' });
    expect(config.subjectMap).toEqual({ acme: 'cust-1' });
  });
});
