import { ClickHouse, isClickHouseRetriable } from '@gpu-meter/kit/clickhouse';
import { runUsageEventsSink } from '@gpu-meter/kit/runners/usage-sink';
import { metricsOn } from '@gpu-meter/kit/runtime';
import { loadConfig, SERVICE_NAME } from './config.js';
import { prepareSchema } from './migrator.js';
import { MIGRATIONS } from './migrations.js';
import { toUsageRow, validateUsageEvent } from './row.js';
import { insertUsageRows } from './usage-writer.js';

runUsageEventsSink({
  service: SERVICE_NAME,
  loadConfig,
  setup: async ({ config, logger, shutdown, metrics, startup }) => {
    const { counter, histogram } = metricsOn(metrics);
    const rowsWritten = counter('gpumeter_sink_rows_written_total', 'Rows inserted into ClickHouse.');
    const deadLettered = counter('gpumeter_sink_dead_letters_total', 'Poison events dead-lettered.');
    const retries = counter('gpumeter_sink_retries_total', 'Failed attempts, by stage.', ['stage']);
    const flushSeconds = histogram('gpumeter_sink_flush_seconds', 'Insert + commit time per batch.');

    const clickhouse = new ClickHouse(config);
    shutdown.register('clickhouse', () => clickhouse.close());
    // Migrations (or, with CLICKHOUSE_MIGRATE=false, the schema check) need ClickHouse: wait for it (not
    // ready meanwhile) rather than crash-looping while it starts; a user that may not do it stops the sink.
    await startup.step(
      config.clickhouseMigrate
        ? `ClickHouse migrations (database ${config.clickhouseDatabase})`
        : `ClickHouse schema check (database ${config.clickhouseDatabase}, CLICKHOUSE_MIGRATE=false)`,
      () => prepareSchema(config, clickhouse, MIGRATIONS, logger),
      isClickHouseRetriable,
    );

    return {
      maxBatch: config.batchMaxRows,
      map: (event) => {
        validateUsageEvent(event);
        return event;
      },
      flush: async (items) => {
        const now = Date.now();
        await insertUsageRows(
          clickhouse,
          items.map((item) => toUsageRow(item.value, item.source, now)),
        );
      },
      onFlushed: (rows, ms) => {
        rowsWritten.inc(rows);
        flushSeconds.observe(ms / 1000);
        if (rows > 0) logger.info({ rows, ms }, 'batch written');
      },
      onRetry: (stage) => retries.inc({ stage }),
      onDeadLettered: () => deadLettered.inc(),
      readiness: { clickhouse: () => clickhouse.ping() },
      describe: { database: config.clickhouseDatabase },
    };
  },
});
