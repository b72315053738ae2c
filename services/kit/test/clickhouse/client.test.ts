import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import {
  ClickHouse,
  clickhouseClientOptions,
  clickhouseConfigSpec,
  clickhouseErrorCode,
  isClickHouseRetriable,
  type ClickHouseConnectionSettings,
} from '../../src/clickhouse/client.js';
import { readConfig } from '../../src/config/env.js';
import { ConfigError } from '../../src/contracts/errors.js';

// Records what reaches createClient (no TLS server here); the real client is never built.
const created = vi.hoisted(() => [] as unknown[]);
vi.mock('@clickhouse/client', async (importOriginal) => ({
  ...(await importOriginal<typeof import('@clickhouse/client')>()),
  createClient: (options: unknown) => {
    created.push(options);
    return { close: async () => undefined };
  },
}));

const dir = mkdtempSync(join(tmpdir(), 'gpum-ch-tls-'));
const pem = (name: string) => {
  const path = join(dir, name);
  writeFileSync(path, `-----${name}-----\n`);
  return path;
};
const files = {
  CLICKHOUSE_CA_FILE: pem('ca.pem'),
  CLICKHOUSE_CERT_FILE: pem('cert.pem'),
  CLICKHOUSE_KEY_FILE: pem('key.pem'),
};
const settings = (env: Record<string, string>) =>
  readConfig(clickhouseConfigSpec, { CLICKHOUSE_URL: 'https://ch.example:8443', ...env });

function configError(work: () => unknown): ConfigError {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('no ConfigError thrown');
}

describe('ClickHouse client options', () => {
  it('trusts the CLICKHOUSE_CA_FILE bundle for an https:// URL', () => {
    const options = clickhouseClientOptions(settings({ CLICKHOUSE_CA_FILE: files.CLICKHOUSE_CA_FILE }));
    expect(options.tls).toEqual({ ca_cert: Buffer.from('-----ca.pem-----\n') });
    expect(options).toMatchObject({ url: 'https://ch.example:8443', username: 'default', password: '' });
  });

  it('sets no tls option without a CA (system CAs for https, plain http stays plain)', () => {
    expect(clickhouseClientOptions(settings({}))).not.toHaveProperty('tls');
    expect(clickhouseClientOptions(settings({ CLICKHOUSE_URL: 'http://localhost:8123' }))).not.toHaveProperty(
      'tls',
    );
  });

  it('presents a client certificate for mutual TLS: cert and key together, with the CA', () => {
    expect(clickhouseClientOptions(settings(files)).tls).toEqual({
      ca_cert: Buffer.from('-----ca.pem-----\n'),
      cert: Buffer.from('-----cert.pem-----\n'),
      key: Buffer.from('-----key.pem-----\n'),
    });
    const { CLICKHOUSE_KEY_FILE: _key, ...noKey } = files;
    expect(configError(() => clickhouseClientOptions(settings(noKey))).variable).toBe('CLICKHOUSE_KEY_FILE');
    const { CLICKHOUSE_CERT_FILE: _cert, ...noCert } = files;
    expect(configError(() => clickhouseClientOptions(settings(noCert))).variable).toBe(
      'CLICKHOUSE_CERT_FILE',
    );
    const { CLICKHOUSE_CA_FILE: _ca, ...noCa } = files;
    expect(configError(() => clickhouseClientOptions(settings(noCa))).variable).toBe('CLICKHOUSE_CA_FILE');
  });

  it('refuses TLS files with an http:// URL, saying the traffic would go unencrypted', () => {
    const error = configError(() =>
      clickhouseClientOptions(
        settings({ CLICKHOUSE_URL: 'http://ch.example:8123', CLICKHOUSE_CA_FILE: files.CLICKHOUSE_CA_FILE }),
      ),
    );
    expect(error.variable).toBe('CLICKHOUSE_CA_FILE');
    expect(error.message).toMatch(/not https:\/\/.*unencrypted/);
    expect(
      configError(() =>
        clickhouseClientOptions(
          settings({
            CLICKHOUSE_URL: 'http://ch.example:8123',
            CLICKHOUSE_CERT_FILE: files.CLICKHOUSE_CERT_FILE,
            CLICKHOUSE_KEY_FILE: files.CLICKHOUSE_KEY_FILE,
          }),
        ),
      ).variable,
    ).toBe('CLICKHOUSE_CERT_FILE');
  });

  it('names the variable whose file cannot be read', () => {
    const missing = join(dir, 'missing.pem');
    expect(
      configError(() => clickhouseClientOptions(settings({ CLICKHOUSE_CA_FILE: missing }))).variable,
    ).toBe('CLICKHOUSE_CA_FILE');
    expect(
      configError(() => clickhouseClientOptions(settings({ ...files, CLICKHOUSE_KEY_FILE: dir }))).variable,
    ).toBe('CLICKHOUSE_KEY_FILE');
  });

  it('is what the ClickHouse wrapper hands to createClient', async () => {
    const chosen: ClickHouseConnectionSettings = settings({ ...files, CLICKHOUSE_USER: 'writer' });
    created.length = 0;
    const clickhouse = new ClickHouse(chosen);
    expect(created).toEqual([clickhouseClientOptions(chosen)]);
    expect(created[0]).toMatchObject({ tls: { ca_cert: Buffer.from('-----ca.pem-----\n') } });
    expect(clickhouse.user).toBe('writer');
    await clickhouse.close();
  });
});

describe('ClickHouse error classification', () => {
  const ddl = new Error(
    'Code: 392, e.displayText() = DB::Exception: Cannot create database. DDL queries are prohibited for the user, e.what() = DB::Exception\n',
  );

  it("reads the code from 18.16's text and from the client's ClickHouseError", () => {
    expect(clickhouseErrorCode(ddl)).toBe(392);
    expect(clickhouseErrorCode(Object.assign(new Error('x'), { code: '497', type: 'ACCESS_DENIED' }))).toBe(
      497,
    );
    expect(
      clickhouseErrorCode(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    ).toBe(undefined);
  });

  it('does not retry a permission or authentication error, but retries an outage', () => {
    expect(isClickHouseRetriable(ddl)).toBe(false);
    expect(
      isClickHouseRetriable(new Error('Code: 193, e.displayText() = DB::Exception: Wrong password')),
    ).toBe(false);
    expect(
      isClickHouseRetriable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    ).toBe(true);
    expect(
      isClickHouseRetriable(new Error('Code: 252, e.displayText() = DB::Exception: Too many parts')),
    ).toBe(true);
  });
});
