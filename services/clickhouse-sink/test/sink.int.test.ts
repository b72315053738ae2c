import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { USAGE_QUANTITIES, type UsageEvent, type UsageQuantity } from '@gpu-meter/kit/contracts';
import { createLogger } from '@gpu-meter/kit/runtime';
import { DEAD_LETTER_HEADERS } from '@gpu-meter/kit/kafka';
import { ClickHouse } from '@gpu-meter/kit/clickhouse';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  createTopics,
  readTopic,
  sleep,
  stackEnv,
  testAdmin,
  uniqueName,
  waitFor,
} from '../../../test/support/kafka.js';
import { startService, type ServiceProcess } from '../../../test/support/processes.js';
import { REPO_ROOT } from '../../../test/support/stack-env.js';
import {
  makeUsageEvents,
  produceUsageEvents,
  relativeError,
  totalsBySubject,
  usageSerde,
} from '../../../test/support/usage-events.js';
import { MIGRATIONS } from '../src/migrations.js';
import { migrate } from '../src/migrator.js';
import { startPasswordProxy, type PasswordProxy } from './support/password-proxy.js';

const CH_PASSWORD = 'ch-pw-3f9a61c2e7';
const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

interface Scenario {
  topic: string;
  deadLetters: string;
  database: string;
  env: Record<string, string>;
  clickhouse: ClickHouse;
  proxy: PasswordProxy;
}

/** Unique topic, dead-letter topic, group and database; the sink reaches ClickHouse through a password proxy. */
async function scenario(extraEnv: Record<string, string> = {}): Promise<Scenario> {
  const stack = stackEnv();
  const topic = uniqueName('usage');
  const deadLetters = uniqueName('sink-dlq');
  const database = uniqueName('sink_it').replace(/-/g, '_');
  await createTopics(await testAdmin(), [topic], 3);
  await createTopics(await testAdmin(), [deadLetters], 1);
  const proxy = await startPasswordProxy(stack.CLICKHOUSE_URL!, 'default', CH_PASSWORD);
  const clickhouse = new ClickHouse(
    {
      clickhouseUrl: stack.CLICKHOUSE_URL!,
      clickhouseUser: 'default',
      clickhousePassword: undefined,
      clickhouseDatabase: database,
    },
    database,
  );
  onTestFinished(async () => {
    await clickhouse.command(`DROP DATABASE IF EXISTS ${database}`).catch(() => undefined);
    await clickhouse.close();
    await proxy.close();
  });
  return {
    topic,
    deadLetters,
    database,
    clickhouse,
    proxy,
    env: {
      KAFKA_BROKERS: stack.KAFKA_BROKERS!,
      SCHEMA_REGISTRY_URL: stack.SCHEMA_REGISTRY_URL!,
      CLICKHOUSE_URL: proxy.url,
      CLICKHOUSE_USER: 'default',
      CLICKHOUSE_PASSWORD: CH_PASSWORD,
      CLICKHOUSE_DATABASE: database,
      USAGE_EVENTS_TOPIC: topic,
      DEAD_LETTER_TOPIC: deadLetters,
      CONSUMER_GROUP_ID: uniqueName('sink'),
      OPS_PORT: '0',
      BATCH_MAX_ROWS: '250',
      BATCH_MAX_WAIT_MS: '300',
      RETRY_INITIAL_MS: '100',
      RETRY_MAX_MS: '1000',
      SESSION_TIMEOUT_MS: '6000',
      ...extraEnv,
    },
  };
}

function clickhouseSettings() {
  return {
    clickhouseUrl: stackEnv().CLICKHOUSE_URL!,
    clickhouseUser: 'default',
    clickhousePassword: undefined,
    clickhouseDatabase: 'default',
  };
}

/** What an analyst gets from the monthly per-subject view with the query they would naturally write. */
async function viewTotals(clickhouse: ClickHouse, database: string) {
  const rows = await clickhouse.query<Record<string, number | string>>(
    `SELECT subject, ${USAGE_QUANTITIES.map((q) => `sum(${snake(q)}) AS ${snake(q)}`).join(', ')}, sum(events) AS events
     FROM ${database}.chargeback_subject_monthly GROUP BY subject`,
  );
  return new Map(rows.map((row) => [String(row.subject), row]));
}

async function distinctEvents(clickhouse: ClickHouse, database: string): Promise<number> {
  const [row] = await clickhouse.query<{ n: string }>(
    `SELECT count() AS n FROM ${database}.usage_events_final`,
  );
  return Number(row?.n ?? 0);
}

async function expectViewsEqualTopic(
  s: Scenario,
  events: readonly UsageEvent[],
  sinks: ServiceProcess[],
): Promise<void> {
  const expected = totalsBySubject(events);
  const distinct = new Set(events.map((e) => e.id)).size;
  try {
    await waitFor(
      `${distinct} distinct events in ClickHouse`,
      async () => (await distinctEvents(s.clickhouse, s.database)) === distinct,
      60_000,
      500,
    );
  } catch (error) {
    const found = await distinctEvents(s.clickhouse, s.database);
    throw new Error(
      `${(error as Error).message} (found ${found})\n${sinks.map((p) => p.tail(60)).join('\n---\n')}`,
    );
  }
  const actual = await viewTotals(s.clickhouse, s.database);
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [subject, totals] of expected) {
    const row = actual.get(subject)!;
    for (const quantity of USAGE_QUANTITIES) {
      expect(
        relativeError(Number(row[snake(quantity)]), totals[quantity as UsageQuantity]),
        `${subject} ${quantity}`,
      ).toBeLessThan(1e-9);
    }
  }
  // Every daily/monthly view by every dimension adds up to the same grand total.
  const grand = [...expected.values()].reduce((sum, t) => sum + t.gpuAllocationSeconds, 0);
  for (const view of [
    'chargeback_daily',
    'chargeback_monthly',
    'chargeback_project_daily',
    'chargeback_department_monthly',
    'chargeback_workload_type_daily',
    'chargeback_gpu_type_monthly',
  ]) {
    const [row] = await s.clickhouse.query<{ total: number }>(
      `SELECT sum(gpu_allocation_seconds) AS total FROM ${s.database}.${view}`,
    );
    expect(relativeError(Number(row!.total), grand), view).toBeLessThan(1e-9);
  }
}

function expectNoSecretInLogs(...processes: ServiceProcess[]): void {
  for (const process of processes) {
    const leaked = process.output.filter((line) => line.includes(CH_PASSWORD));
    expect(leaked, 'log lines containing the ClickHouse password').toEqual([]);
  }
}

describe('clickhouse-sink against Kafka and ClickHouse 18.16', () => {
  it('views equal the topic: duplicates collapse, corrections add, poison is dead-lettered, no secret logged', async () => {
    const s = await scenario();
    const events = makeUsageEvents(1500, 11);
    const resent = events.slice(0, 200); // the same events again (a replay): must not change any total
    const poison = Buffer.from('not avro at all');
    await produceUsageEvents(s.topic, [...events, ...resent], { extra: [poison] });
    const sink = startService('clickhouse-sink', s.env);
    await expectViewsEqualTopic(s, events, [sink]);
    // The raw table holds the resent rows too until a merge; the views do not count them.
    const dead = await readTopic(s.deadLetters, { count: 1 });
    expect(dead[0]!.message.value).toEqual(poison);
    expect(String(dead[0]!.message.headers![DEAD_LETTER_HEADERS.sourceTopic])).toBe(s.topic);
    expect(String(dead[0]!.message.headers![DEAD_LETTER_HEADERS.errorCode])).toBe('GPUM_DECODE_FAILED');
    // Precision: every stored quantity reads back bit for bit (18.16 parses text floats inexactly).
    const stored = await s.clickhouse.query<Record<string, number | string>>(
      `SELECT id, ${USAGE_QUANTITIES.map(snake).join(', ')} FROM ${s.database}.usage_events_final`,
    );
    const byId = new Map(events.map((event) => [event.id, event]));
    const inexact = stored.flatMap((row) =>
      USAGE_QUANTITIES.filter((q) => row[snake(q)] !== byId.get(String(row.id))![q]).map(
        (q) => `${row.id} ${q}`,
      ),
    );
    expect(inexact).toEqual([]);
    // Migrations ran once and are not re-run by a second start.
    await sink.kill('SIGTERM');
    const again = startService('clickhouse-sink', s.env);
    await again.waitForLog(/clickhouse-sink started/);
    expect(again.output.some((line) => line.includes('migration applied'))).toBe(false);
    const [migrations] = await s.clickhouse.query<{ n: string }>(
      `SELECT count() AS n FROM ${s.database}.schema_migrations FINAL`,
    );
    expect(Number(migrations!.n)).toBe(2);
    expectNoSecretInLogs(sink, again);
  });

  it('migrations are safe when replicas start together: each applied, all objects there, none twice in effect', async () => {
    const s = await scenario();
    const replicas = [0, 1, 2].map(
      () => new ClickHouse({ ...clickhouseSettings(), clickhouseDatabase: s.database }),
    );
    onTestFinished(() => Promise.all(replicas.map((replica) => replica.close())).then(() => undefined));
    const logger = createLogger('test', 'silent');
    await Promise.all(replicas.map((replica) => migrate(replica, MIGRATIONS, logger)));
    const [applied] = await s.clickhouse.query<{ n: string }>(
      `SELECT count() AS n FROM ${s.database}.schema_migrations FINAL`,
    );
    expect(Number(applied!.n)).toBe(MIGRATIONS.length);
    expect(await migrate(replicas[0]!, MIGRATIONS, logger)).toEqual([]);
    const tables = await s.clickhouse.query<{ name: string }>(`SHOW TABLES FROM ${s.database}`);
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining([
        'usage_events',
        'usage_events_final',
        'chargeback_subject_monthly',
        'chargeback_project_daily',
      ]),
    );
  });

  it('views equal the topic after the sink is SIGKILLed mid-batch and restarted', async () => {
    const s = await scenario({ BATCH_MAX_ROWS: '100', BATCH_MAX_WAIT_MS: '5000' });
    const serde = await usageSerde(s.topic);
    const events = makeUsageEvents(3000, 22);
    await produceUsageEvents(s.topic, events.slice(0, 1500), { serde });
    const first = startService('clickhouse-sink', s.env);
    await first.waitForLog(/batch written/);
    await first.kill('SIGKILL');
    const before = await distinctEvents(s.clickhouse, s.database);
    expect(before).toBeLessThan(1500); // it really died mid-stream
    await produceUsageEvents(s.topic, events.slice(1500), { serde });
    const second = startService('clickhouse-sink', s.env);
    await expectViewsEqualTopic(s, events, [first, second]);
    expectNoSecretInLogs(first, second);
  });

  it('commits no offset ClickHouse did not acknowledge: a SIGKILL while inserts fail loses nothing', async () => {
    const s = await scenario({ BATCH_MAX_ROWS: '100' });
    const serde = await usageSerde(s.topic);
    const events = makeUsageEvents(1000, 44);
    await produceUsageEvents(s.topic, events.slice(0, 300), { serde });
    const first = startService('clickhouse-sink', s.env);
    await waitFor(
      '300 rows',
      async () => (await distinctEvents(s.clickhouse, s.database)) === 300,
      60_000,
      200,
    );
    s.proxy.down = true; // every insert now fails
    await produceUsageEvents(s.topic, events.slice(300), { serde });
    const failures = () => first.output.filter((line) => line.includes('flush failed')).length;
    await waitFor('several failed inserts', () => failures() >= 4, 60_000, 100);
    await first.kill('SIGKILL');
    s.proxy.down = false;
    expect(await distinctEvents(s.clickhouse, s.database)).toBe(300);
    const second = startService('clickhouse-sink', s.env);
    await expectViewsEqualTopic(s, events, [first, second]);
  });

  const script = `${REPO_ROOT}test/stack/clickhouse.sh`;
  it('views equal the topic after ClickHouse is stopped and started mid-run', async () => {
    expect(existsSync(script), 'test/stack/clickhouse.sh').toBe(true);
    const run = promisify(execFile);
    const s = await scenario();
    const serde = await usageSerde(s.topic);
    const events = makeUsageEvents(2000, 33);
    await produceUsageEvents(s.topic, events.slice(0, 800), { serde });
    const sink = startService('clickhouse-sink', s.env);
    await waitFor(
      'first rows',
      async () => (await distinctEvents(s.clickhouse, s.database)) > 0,
      60_000,
      200,
    );
    let stopped = false;
    try {
      await run('bash', [script, 'stop'], { cwd: REPO_ROOT });
      stopped = true;
      await produceUsageEvents(s.topic, events.slice(800), { serde });
      await sink.waitForLog(/flush failed; retrying/, 30_000);
      await sleep(2_000);
    } finally {
      if (stopped) await run('bash', [script, 'start'], { cwd: REPO_ROOT });
    }
    expect(sink.running).toBe(true);
    await expectViewsEqualTopic(s, events, [sink]);
    expectNoSecretInLogs(sink);
  });
});
