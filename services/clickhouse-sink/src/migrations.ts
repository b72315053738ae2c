/**
 * The schema of the sink's database, as numbered migrations applied in order at start-up (migrator.ts).
 * Rules that keep them safe on ClickHouse 18.16 and current releases, and when two replicas start at once:
 * - every statement is idempotent by itself (IF NOT EXISTS), so a migration that ran halfway, or ran in
 *   two replicas at the same time, is simply run again;
 * - a migration is never edited once released: change the schema with a new one (its checksum is recorded
 *   and a mismatch is reported at start-up);
 * - plain SQL only: no `{name:Type}` parameters, no DateTime64, no settings 18.16 lacks.
 * `{db}` is replaced by the quoted database name.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

const QUANTITY_COLUMNS = [
  'gpu_allocation_seconds',
  'gpu_memory_allocated_byte_seconds',
  'gpu_memory_used_byte_seconds',
  'nvlink_tx_bytes',
  'nvlink_rx_bytes',
  'pcie_tx_bytes',
  'pcie_rx_bytes',
  'cpu_core_seconds',
  'memory_byte_seconds',
] as const;

const USAGE_TABLE = `
CREATE TABLE IF NOT EXISTS {db}.usage_events (
  id String,
  subject String,
  cluster_id String,
  project String,
  department String,
  workload_type String,
  gpu_type String,
  window_start DateTime('UTC'),
  window_end DateTime('UTC'),
  window_start_ms Int64,
  window_end_ms Int64,
${QUANTITY_COLUMNS.map((column) => `  ${column} Float64,`).join('\n')}
  sample_count Int64,
  correction UInt8,
  kafka_topic String,
  kafka_partition Int32,
  kafka_offset Int64,
  inserted_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY id`;
// ORDER BY id alone: the replacing key is the event id, so an event inserted twice (a retry, a replay, a
// restarted sink) collapses to one row. An id always has the same window, hence the same partition, which
// ReplacingMergeTree needs (it only collapses rows within a partition).

/** Per-period dimensions of the chargeback views; `usage_events FINAL` dedupes at read time. */
const PERIODS = {
  daily: { column: 'day', expression: 'toDate(window_start)' },
  monthly: { column: 'month', expression: 'toStartOfMonth(window_start)' },
} as const;

export const CHARGEBACK_DIMENSIONS = [
  'subject',
  'project',
  'department',
  'workload_type',
  'gpu_type',
] as const;
const ALL_DIMENSIONS = ['subject', 'cluster_id', 'project', 'department', 'workload_type', 'gpu_type'];

function chargebackView(name: string, period: keyof typeof PERIODS, dimensions: readonly string[]): string {
  const { column, expression } = PERIODS[period];
  // The inner query renames the quantities (q_*) so the outer aliases never shadow a column they
  // aggregate: 18.16 resolves sum(x) AS x ... x / 3600 to a nested aggregate and rejects it.
  return `
CREATE VIEW IF NOT EXISTS {db}.${name} AS
SELECT
  ${column},
${dimensions.map((dimension) => `  ${dimension},`).join('\n')}
${QUANTITY_COLUMNS.map((quantity) => `  sum(q_${quantity}) AS ${quantity},`).join('\n')}
  sum(q_gpu_allocation_seconds) / 3600 AS gpu_hours,
  sum(q_sample_count) AS sample_count,
  count() AS events,
  sum(q_correction) AS correction_events
FROM (
  SELECT
    ${expression} AS ${column},
${dimensions.map((dimension) => `    ${dimension},`).join('\n')}
${[...QUANTITY_COLUMNS, 'sample_count'].map((quantity) => `    ${quantity} AS q_${quantity},`).join('\n')}
    toUInt64(correction) AS q_correction
  FROM {db}.usage_events FINAL
)
GROUP BY ${[column, ...dimensions].join(', ')}`;
}

/** Every chargeback view: all dimensions per day and month, and one per dimension per day and month. */
export function chargebackViews(): Array<{ name: string; sql: string }> {
  const views: Array<{ name: string; sql: string }> = [];
  for (const period of Object.keys(PERIODS) as Array<keyof typeof PERIODS>) {
    views.push({
      name: `chargeback_${period}`,
      sql: chargebackView(`chargeback_${period}`, period, ALL_DIMENSIONS),
    });
    for (const dimension of CHARGEBACK_DIMENSIONS) {
      const name = `chargeback_${dimension}_${period}`;
      views.push({ name, sql: chargebackView(name, period, [dimension]) });
    }
  }
  return views;
}

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'usage_events table', statements: [USAGE_TABLE] },
  {
    version: 2,
    name: 'deduplicated usage view and chargeback views',
    statements: [
      'CREATE VIEW IF NOT EXISTS {db}.usage_events_final AS SELECT * FROM {db}.usage_events FINAL',
      ...chargebackViews().map((view) => view.sql),
    ],
  },
];
