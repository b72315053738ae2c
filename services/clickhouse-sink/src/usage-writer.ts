import { Readable } from 'node:stream';
import { quoteIdentifier, type ClickHouse } from '@gpu-meter/kit/clickhouse';
import { encodeRowBinary } from './row-binary.js';
import { USAGE_COLUMNS, type UsageRow } from './row.js';

export const USAGE_TABLE = 'usage_events';

/**
 * Inserts rows as RowBinary (exact floats on 18.16, see row-binary.ts), naming the columns so the table's
 * column order does not matter. Resolves once ClickHouse acknowledged the insert; throws otherwise.
 */
export async function insertUsageRows(clickhouse: ClickHouse, rows: readonly UsageRow[]): Promise<void> {
  if (rows.length === 0) return;
  const columns = USAGE_COLUMNS.map((column) => quoteIdentifier(column.name)).join(', ');
  const table = `${quoteIdentifier(clickhouse.database)}.${quoteIdentifier(USAGE_TABLE)}`;
  const result = await clickhouse.client.exec({
    query: `INSERT INTO ${table} (${columns}) FORMAT RowBinary`,
    values: Readable.from([encodeRowBinary(USAGE_COLUMNS, rows)]),
  });
  // The answer is empty; drain it so the socket goes back to the pool.
  for await (const _chunk of result.stream) {
    // nothing to read
  }
}
