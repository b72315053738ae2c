import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@gpu-meter/kit/contracts';
import { readConfig, type ConfigSpec } from '@gpu-meter/kit/config';
import { opsConfigSpec } from '@gpu-meter/kit/runtime';
import { kafkaConfigSpec, registryConfigSpec } from '@gpu-meter/kit/kafka';
import { clickhouseConfigSpec } from '@gpu-meter/kit/clickhouse';
import { kubernetesConfigSpec } from '@gpu-meter/kit/kubernetes';
import { fuzz } from '../../../../test/support/fuzz.js';

/**
 * readConfig over random environments for the common specs: it returns a frozen config or throws
 * ConfigError naming a variable of the spec (or its _FILE), and never echoes a secret's value.
 */
const spec = {
  ...kafkaConfigSpec,
  ...registryConfigSpec,
  ...opsConfigSpec,
  ...clickhouseConfigSpec,
  ...kubernetesConfigSpec,
} satisfies ConfigSpec;
const fields = Object.values(spec);
const variables = fields.map((f) => f.variable);
const secrets = fields.filter((f) => f.secret).map((f) => f.variable);

const dir = mkdtempSync(join(tmpdir(), 'config-fuzz-'));
const secretFile = join(dir, 'secret');
writeFileSync(secretFile, 'S3CRET-from-file\n');
const files = [secretFile, dir, join(dir, 'missing'), ''];

const value = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    'localhost:9092',
    'a:1, b:2',
    ',',
    'http://127.0.0.1:8081',
    'https://x/apis/ccompat/v7',
    'ftp://x',
    'http://',
  ),
  fc.constantFrom(
    '0',
    '65535',
    '65536',
    '-1',
    '1.5',
    '1e3',
    ' 42 ',
    'true',
    'FALSE',
    'yes',
    'maybe',
    'plain',
    'SCRAM-SHA-256',
    'info',
    'silent',
  ),
  fc.string({ maxLength: 16 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
);

/** Some variables set (valid-looking or not), some secrets also or instead given as _FILE. */
const environment = fc
  .tuple(
    fc.dictionary(fc.constantFrom(...variables), value, { maxKeys: variables.length }),
    // Secrets carry a marker, so that a leak is recognisable in any message.
    fc.dictionary(
      fc.constantFrom(...secrets),
      value.map((v) => `PWD${v}`),
      { maxKeys: secrets.length },
    ),
    fc.dictionary(fc.constantFrom(...secrets.map((v) => `${v}_FILE`)), fc.constantFrom(...files), {
      maxKeys: 2,
    }),
    fc.boolean(),
  )
  .map(([set, secretVars, fileVars, withRequired]) => ({
    ...(withRequired
      ? { KAFKA_BROKERS: 'k:9092', SCHEMA_REGISTRY_URL: 'http://r:8081', CLICKHOUSE_URL: 'http://c:8123' }
      : {}),
    ...Object.fromEntries(Object.entries(set).filter(([k]) => !secrets.includes(k))),
    ...secretVars,
    ...fileVars,
  }));

describe('readConfig under random environments', () => {
  it('returns a frozen config or a ConfigError naming the variable, without leaking secrets', () => {
    fuzz(
      fc.property(environment, (env: Record<string, string>) => {
        let config;
        try {
          config = readConfig(spec, env);
        } catch (error) {
          expect(error, String(error)).toBeInstanceOf(ConfigError);
          const { variable, message } = error as ConfigError;
          expect(variables.includes(variable) || variables.includes(variable.replace(/_FILE$/, ''))).toBe(
            true,
          );
          expect(message).toContain(variable);
          expect(message).not.toContain('PWD');
          expect(message).not.toContain('S3CRET-from-file');
          return;
        }
        expect(Object.isFrozen(config)).toBe(true);
        expect(config.kafkaBrokers.length).toBeGreaterThan(0);
        expect(Number.isInteger(config.opsPort) && config.opsPort >= 0 && config.opsPort <= 65535).toBe(true);
        expect(typeof config.kafkaTls).toBe('boolean');
        expect(URL.canParse(config.schemaRegistryUrl)).toBe(true);
        expect(config.clickhouseDatabase.trim().length).toBeGreaterThan(0);
      }),
      1500,
    );
  });
});
