import { readFileSync } from 'node:fs';
import {
  ClickHouseLogLevel,
  createClient,
  type ClickHouseClient,
  type ClickHouseClientConfigOptions,
} from '@clickhouse/client';
import { env, schemas, type ConfigOf } from '../config/env.js';
import { ConfigError, isRetriable } from '../contracts/errors.js';

export const clickhouseConfigSpec = {
  clickhouseUrl: env('CLICKHOUSE_URL', schemas.url(), 'ClickHouse HTTP URL, e.g. http://localhost:8123.'),
  clickhouseUser: env('CLICKHOUSE_USER', schemas.nonEmpty('default'), 'ClickHouse user.'),
  clickhousePassword: env('CLICKHOUSE_PASSWORD', schemas.optionalString(), 'ClickHouse password.', {
    secret: true,
  }),
  clickhouseDatabase: env(
    'CLICKHOUSE_DATABASE',
    schemas.nonEmpty('gpu_meter'),
    'Database holding the usage tables.',
  ),
  clickhouseCaFile: env(
    'CLICKHOUSE_CA_FILE',
    schemas.optionalString(),
    'PEM file of the CAs to trust for an https:// CLICKHOUSE_URL (replaces the system CAs).',
  ),
  clickhouseCertFile: env(
    'CLICKHOUSE_CERT_FILE',
    schemas.optionalString(),
    'PEM client certificate for mutual TLS (with CLICKHOUSE_KEY_FILE and CLICKHOUSE_CA_FILE).',
  ),
  clickhouseKeyFile: env(
    'CLICKHOUSE_KEY_FILE',
    schemas.optionalString(),
    'PEM private key of the ClickHouse client certificate.',
  ),
} as const;

export type ClickHouseSettings = ConfigOf<typeof clickhouseConfigSpec>;

type TlsFileKey = 'clickhouseCaFile' | 'clickhouseCertFile' | 'clickhouseKeyFile';
/** What a client needs: the TLS files may be left out (no TLS beyond the system CAs). */
export type ClickHouseConnectionSettings = Omit<ClickHouseSettings, TlsFileKey> &
  Partial<Pick<ClickHouseSettings, TlsFileKey>>;

/** Reads a PEM file named by `variable`; an unreadable file is a ConfigError naming the variable. */
export function readPemFile(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(variable, `cannot read ${path}: ${(error as Error).message}`);
  }
}

/**
 * The @clickhouse/client options for these settings; pure but for `readFile` (the PEM files). Refuses at
 * once, naming the variable: a CA or client certificate with an http:// URL (TLS is never used there, so the
 * traffic, password included, would go unencrypted while the operator believes it verified), a certificate
 * without its key or the reverse, and a client certificate without CLICKHOUSE_CA_FILE (the client needs
 * the CA for mutual TLS).
 */
export function clickhouseClientOptions(
  settings: ClickHouseConnectionSettings,
  readFile: (variable: string, path: string) => Buffer = readPemFile,
): ClickHouseClientConfigOptions {
  const { clickhouseCaFile: ca, clickhouseCertFile: cert, clickhouseKeyFile: key } = settings;
  if ((ca || cert || key) && !settings.clickhouseUrl.startsWith('https:')) {
    const variable = ca ? 'CLICKHOUSE_CA_FILE' : cert ? 'CLICKHOUSE_CERT_FILE' : 'CLICKHOUSE_KEY_FILE';
    throw new ConfigError(
      variable,
      'is set but CLICKHOUSE_URL is not https://: the client would connect without TLS, so the file ' +
        'would be ignored and everything (the password too) sent unencrypted; use an https:// URL or unset it',
    );
  }
  if (Boolean(cert) !== Boolean(key))
    throw new ConfigError(
      cert ? 'CLICKHOUSE_KEY_FILE' : 'CLICKHOUSE_CERT_FILE',
      'mutual TLS needs both files',
    );
  if (cert && !ca) throw new ConfigError('CLICKHOUSE_CA_FILE', 'is required for mutual TLS');
  const tls = ca
    ? {
        ca_cert: readFile('CLICKHOUSE_CA_FILE', ca),
        ...(cert && key
          ? { cert: readFile('CLICKHOUSE_CERT_FILE', cert), key: readFile('CLICKHOUSE_KEY_FILE', key) }
          : {}),
      }
    : undefined;
  return {
    url: settings.clickhouseUrl,
    username: settings.clickhouseUser,
    password: settings.clickhousePassword ?? '',
    request_timeout: 30_000,
    // 18.16 rejects settings it does not know; send none by default.
    clickhouse_settings: {},
    compression: { request: false, response: false },
    // The client would print its own errors to stderr, outside the service's pino logger; every error
    // reaches the caller anyway, which logs it (structured, redacted).
    log: { level: ClickHouseLogLevel.OFF },
    ...(tls ? { tls } : {}),
  };
}

/**
 * ClickHouse's error code, from the client's ClickHouseError or, for 18.16 (whose messages the client does
 * not parse), from the text "Code: 392, e.displayText() = ...".
 */
export function clickhouseErrorCode(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && /^\d+$/.test(code)) return Number(code);
  const match = typeof message === 'string' ? /^\s*Code: (\d+)[,.]/.exec(message) : null;
  return match ? Number(match[1]) : undefined;
}

/**
 * ClickHouse answers that no retry can change: the user is not allowed (DDL prohibited, read-only, access
 * denied) or not known (wrong password, unknown user). Outages stay retriable.
 */
export const CLICKHOUSE_PERMANENT_CODES: ReadonlyMap<number, string> = new Map([
  [164, 'READONLY'],
  [192, 'UNKNOWN_USER'],
  [193, 'WRONG_PASSWORD'],
  [194, 'REQUIRED_PASSWORD'],
  [291, 'DATABASE_ACCESS_DENIED'],
  [392, 'QUERY_IS_PROHIBITED'],
  [497, 'ACCESS_DENIED'],
  [516, 'AUTHENTICATION_FAILED'],
]);

/** `isRetriable` for ClickHouse I/O: a permission or authentication error is not retriable. */
export function isClickHouseRetriable(error: unknown): boolean {
  const code = clickhouseErrorCode(error);
  if (code !== undefined && CLICKHOUSE_PERMANENT_CODES.has(code)) return false;
  return isRetriable(error);
}

/**
 * A thin wrapper over @clickhouse/client that keeps to SQL both ClickHouse 18.16 (Debian's) and current
 * releases understand: values are inlined with `quote`/`quoteIdentifier` rather than `{name:Type}`
 * parameters, which 18.16 lacks, and rows go in as JSONEachRow.
 */
export class ClickHouse {
  readonly client: ClickHouseClient;

  /** The user this client connects as (for messages; never the password). */
  readonly user: string;

  constructor(
    settings: ClickHouseConnectionSettings,
    readonly database: string = settings.clickhouseDatabase,
  ) {
    this.user = settings.clickhouseUser;
    this.client = createClient(clickhouseClientOptions(settings));
  }

  async ping(): Promise<boolean> {
    const result = await this.client.ping();
    return result.success;
  }

  async command(sql: string): Promise<void> {
    await this.client.command({ query: sql });
  }

  /**
   * JSONEachRow insert. Caution: 18.16's text float parser is not correctly rounded (some Float64 values land
   * one ULP off); where exact floats matter, insert RowBinary (see services/clickhouse-sink/src/row-binary.ts).
   */
  async insert<Row extends Record<string, unknown>>(table: string, rows: readonly Row[]): Promise<void> {
    if (rows.length === 0) return;
    await this.client.insert({
      table: `${quoteIdentifier(this.database)}.${quoteIdentifier(table)}`,
      values: [...rows],
      format: 'JSONEachRow',
    });
  }

  async query<Row>(sql: string): Promise<Row[]> {
    const result = await this.client.query({ query: sql, format: 'JSONEachRow' });
    return result.json<Row>();
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** Quotes a string literal for ClickHouse SQL (backslash and single quote escaped). */
export function quote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export function quoteIdentifier(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not a plain identifier: ${name}`);
  return `\`${name}\``;
}
