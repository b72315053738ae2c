import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError } from '@gpu-meter/kit/contracts';
import { describeConfig, env, readConfig, schemas } from '@gpu-meter/kit/config';
import { createLogger } from '@gpu-meter/kit/runtime';
import { createKafka, kafkaConfigSpec, registryConfigSpec } from '@gpu-meter/kit/kafka';

const base = { KAFKA_BROKERS: 'localhost:9092', SCHEMA_REGISTRY_URL: 'http://localhost:8081' };
const spec = { ...kafkaConfigSpec, ...registryConfigSpec };

function errorOf(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('readConfig', () => {
  it('parses a valid environment into a frozen typed object with defaults', () => {
    const config = readConfig(spec, { ...base, KAFKA_BROKERS: 'a:1, b:2' });
    expect(config.kafkaBrokers).toEqual(['a:1', 'b:2']);
    expect(config.kafkaSaslMechanism).toBe('none');
    expect(config.kafkaTls).toBe(false);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('stops on an empty KAFKA_BROKERS, naming the variable', () => {
    const error = errorOf(() => readConfig(spec, { ...base, KAFKA_BROKERS: '' }));
    expect(error.variable).toBe('KAFKA_BROKERS');
    expect(error.message).toMatch(/^Invalid configuration: KAFKA_BROKERS: /);
    expect(error.code).toBe('GPUM_CONFIG_INVALID');
  });

  it('stops on a missing KAFKA_BROKERS, naming the variable', () => {
    expect(errorOf(() => readConfig(spec, { SCHEMA_REGISTRY_URL: base.SCHEMA_REGISTRY_URL })).variable).toBe(
      'KAFKA_BROKERS',
    );
  });

  it('stops on an unknown SASL mechanism, naming the variable', () => {
    const error = errorOf(() => readConfig(spec, { ...base, KAFKA_SASL_MECHANISM: 'kerberos-magic' }));
    expect(error.variable).toBe('KAFKA_SASL_MECHANISM');
  });

  it('rejects a non-URL registry address and a non-integer number', () => {
    expect(errorOf(() => readConfig(spec, { ...base, SCHEMA_REGISTRY_URL: 'registry:8081' })).variable).toBe(
      'SCHEMA_REGISTRY_URL',
    );
    const ports = { port: env('OPS_PORT', schemas.int(9464, 0, 65535), 'port') };
    expect(errorOf(() => readConfig(ports, { OPS_PORT: '80.5' })).variable).toBe('OPS_PORT');
    expect(errorOf(() => readConfig(ports, { OPS_PORT: '70000' })).variable).toBe('OPS_PORT');
  });

  it('reads a secret from VAR_FILE and never echoes a secret in its error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpum-'));
    writeFileSync(join(dir, 'password'), 's3cr3t-value\n');
    const config = readConfig(spec, { ...base, KAFKA_SASL_PASSWORD_FILE: join(dir, 'password') });
    expect(config.kafkaSaslPassword).toBe('s3cr3t-value');

    const secretSpec = {
      token: env('API_TOKEN', z.string().min(40, 'is too short'), 'token', { secret: true }),
    };
    const error = errorOf(() => readConfig(secretSpec, { API_TOKEN: 'short-secret-value' }));
    expect(error.variable).toBe('API_TOKEN');
    expect(error.message).not.toContain('short-secret-value');
    const both = errorOf(() =>
      readConfig(spec, {
        ...base,
        KAFKA_SASL_PASSWORD: 'x',
        KAFKA_SASL_PASSWORD_FILE: join(dir, 'password'),
      }),
    );
    expect(both.variable).toBe('KAFKA_SASL_PASSWORD');
  });

  it('names the _FILE variable when the file cannot be read', () => {
    expect(
      errorOf(() => readConfig(spec, { ...base, KAFKA_SASL_PASSWORD_FILE: '/nonexistent/pw' })).variable,
    ).toBe('KAFKA_SASL_PASSWORD_FILE');
  });

  it('requires SASL credentials when a mechanism is set (cross-field rule, checked before any I/O)', () => {
    const config = readConfig(spec, {
      ...base,
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_TLS: 'true', // SASL without TLS is refused first (security.test.ts)
    });
    const error = errorOf(() => createKafka(config, 'test', createLogger('test', 'silent')));
    expect(error.variable).toBe('KAFKA_SASL_PASSWORD');
  });

  it('takes SCHEMA_COMPATIBILITY as a registry level or none (default BACKWARD), else stops naming it', () => {
    expect(readConfig(spec, base).schemaCompatibility).toBe('BACKWARD');
    expect(readConfig(spec, { ...base, SCHEMA_COMPATIBILITY: 'FULL_TRANSITIVE' }).schemaCompatibility).toBe(
      'FULL_TRANSITIVE',
    );
    expect(readConfig(spec, { ...base, SCHEMA_COMPATIBILITY: 'none' }).schemaCompatibility).toBe('none');
    // NONE (the registry's "no checks" level) is refused: too close to `none` (write no rule) to guess.
    for (const value of ['NONE', 'strict', 'backward', '']) {
      const error = errorOf(() => readConfig(spec, { ...base, SCHEMA_COMPATIBILITY: value }));
      expect(error.variable).toBe('SCHEMA_COMPATIBILITY');
    }
  });

  it('documents every variable with its default', () => {
    const table = describeConfig(spec);
    expect(table).toContain('`KAFKA_BROKERS`');
    expect(table).toContain('| `KAFKA_SASL_MECHANISM` | "none" |');
    expect(table).toContain('`KAFKA_SASL_PASSWORD` (or `_FILE`)');
  });
});
