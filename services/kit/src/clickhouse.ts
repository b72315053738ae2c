import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { env, schemas, type ConfigOf } from './config.js';

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
} as const;

export type ClickHouseSettings = ConfigOf<typeof clickhouseConfigSpec>;

/**
 * A thin wrapper over @clickhouse/client that keeps to SQL both ClickHouse 18.16 (Debian's) and current
 * releases understand: values are inlined with `quote`/`quoteIdentifier` rather than `{name:Type}`
 * parameters, which 18.16 lacks, and rows go in as JSONEachRow.
 */
export class ClickHouse {
  readonly client: ClickHouseClient;

  constructor(
    settings: ClickHouseSettings,
    readonly database: string = settings.clickhouseDatabase,
  ) {
    this.client = createClient({
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
    });
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
