import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/contracts/errors.js';
import { kafkaConfigSpec } from '../src/kafka/config.js';
import { readConfig } from '../src/config/env.js';
import { kafkaClientConfig } from '../src/kafka/client.js';
import { createLogger } from '../src/runtime/logger.js';

const quiet = createLogger('test', 'silent');
const kafka = (env: Record<string, string>) =>
  kafkaClientConfig(readConfig(kafkaConfigSpec, { KAFKA_BROKERS: 'k:9092', ...env }), 'svc', quiet);
const sasl = { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' };

describe('Kafka security settings', () => {
  it('refuses SASL over plaintext (the password would cross the network in clear), naming KAFKA_TLS', () => {
    let error: unknown;
    try {
      kafka(sasl);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('KAFKA_TLS');
    expect(kafka({ ...sasl, KAFKA_ALLOW_PLAINTEXT_SASL: 'true' }).sasl).toMatchObject({ mechanism: 'plain' });
    expect(kafka({ ...sasl, KAFKA_TLS: 'true' }).ssl).toBe(true);
  });

  it('presents a client certificate for mutual TLS, and needs both files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpum-tls-'));
    for (const name of ['ca.pem', 'cert.pem', 'key.pem'])
      writeFileSync(join(dir, name), `-----${name}-----\n`);
    const files = {
      KAFKA_TLS: 'true',
      KAFKA_TLS_CA_FILE: join(dir, 'ca.pem'),
      KAFKA_TLS_CERT_FILE: join(dir, 'cert.pem'),
      KAFKA_TLS_KEY_FILE: join(dir, 'key.pem'),
    };
    expect(kafka(files).ssl).toEqual({
      ca: ['-----ca.pem-----\n'],
      cert: '-----cert.pem-----\n',
      key: '-----key.pem-----\n',
    });
    expect(() => kafka({ ...files, KAFKA_TLS_KEY_FILE: '' })).toThrow(/KAFKA_TLS_KEY_FILE/);
    expect(() =>
      kafka({ KAFKA_TLS_CERT_FILE: files.KAFKA_TLS_CERT_FILE, KAFKA_TLS_KEY_FILE: files.KAFKA_TLS_KEY_FILE }),
    ).toThrow(/KAFKA_TLS/);
  });
});

describe('log lines', () => {
  it('never carry credentials embedded in a URL, in the message or any field', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger('test', 'info', sink);
    logger.info(
      { url: 'http://gpu_meter:s3cret@clickhouse:8123/?x=1' },
      'connecting to http://u:hunter2@h:1/',
    );
    logger.warn({ err: new Error('fetch https://admin:pa%40ss@registry/x failed') }, 'registry down');
    logger.info({ nested: { list: ['https://a:b@c/d'] } }, 'plain http://host:80/ stays');
    const text = lines.join('');
    for (const secret of ['s3cret', 'hunter2', 'pa%40ss', ':b@']) expect(text).not.toContain(secret);
    expect(text).toContain('http://gpu_meter:[redacted]@clickhouse:8123/?x=1');
    expect(text).toContain('plain http://host:80/ stays');
  });
});
