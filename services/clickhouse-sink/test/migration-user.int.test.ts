import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClickHouse } from '@gpu-meter/kit/clickhouse';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createTopics, stackEnv, testAdmin, uniqueName, waitFor } from '../../../test/support/kafka.js';
import { startService, type ServiceProcess } from '../../../test/support/processes.js';
import { REPO_ROOT } from '../../../test/support/stack-env.js';
import { makeUsageEvents, produceUsageEvents } from '../../../test/support/usage-events.js';
import { MIGRATIONS } from '../src/migrations.js';

/**
 * The sink's everyday user needs no DDL rights (issue 13, point 8). test/stack/clickhouse/users.xml has
 * `gpu_meter_writer` (profile allow_ddl = 0: SELECT and INSERT only) and `gpu_meter_migrator` (DDL allowed).
 */
const WRITER = { user: 'gpu_meter_writer', password: 'writer-pw-5d21c8' };
const MIGRATOR = { user: 'gpu_meter_migrator', password: 'migrator-pw-9b04e7' };

interface Scenario {
  topic: string;
  database: string;
  env: Record<string, string>;
  /** The password-less `default` user (all rights): what the test itself checks with. */
  admin: ClickHouse;
}

function client(database: string, user = 'default', password?: string): ClickHouse {
  return new ClickHouse({
    clickhouseUrl: stackEnv().CLICKHOUSE_URL!,
    clickhouseUser: user,
    clickhousePassword: password,
    clickhouseDatabase: database,
  });
}

async function scenario(extraEnv: Record<string, string> = {}): Promise<Scenario> {
  const stack = stackEnv();
  const topic = uniqueName('usage');
  const deadLetters = uniqueName('sink-dlq');
  const database = uniqueName('sink_ddl').replace(/-/g, '_');
  await createTopics(await testAdmin(), [topic], 2);
  await createTopics(await testAdmin(), [deadLetters], 1);
  const admin = client(database);
  onTestFinished(async () => {
    await admin.command(`DROP DATABASE IF EXISTS ${database}`).catch(() => undefined);
    await admin.close();
  });
  // The users come from test/stack/clickhouse/users.xml, rendered at `npm run stack:up` (ClickHouse reloads
  // users.xml by itself, no restart).
  const writer = client(database, WRITER.user, WRITER.password);
  try {
    await writer.query('SELECT 1 AS one');
  } catch (error) {
    throw new Error(
      `the stack's ClickHouse has no ${WRITER.user} user; run npm run stack:up to render ` +
        `test/stack/clickhouse/users.xml (${(error as Error).message})`,
    );
  } finally {
    await writer.close();
  }
  return {
    topic,
    database,
    admin,
    env: {
      KAFKA_BROKERS: stack.KAFKA_BROKERS!,
      SCHEMA_REGISTRY_URL: stack.SCHEMA_REGISTRY_URL!,
      CLICKHOUSE_URL: stack.CLICKHOUSE_URL!,
      CLICKHOUSE_USER: WRITER.user,
      CLICKHOUSE_PASSWORD: WRITER.password,
      CLICKHOUSE_DATABASE: database,
      USAGE_EVENTS_TOPIC: topic,
      DEAD_LETTER_TOPIC: deadLetters,
      CONSUMER_GROUP_ID: uniqueName('sink'),
      OPS_PORT: '0',
      BATCH_MAX_ROWS: '100',
      BATCH_MAX_WAIT_MS: '300',
      RETRY_INITIAL_MS: '100',
      RETRY_MAX_MS: '1000',
      SESSION_TIMEOUT_MS: '6000',
      ...extraEnv,
    },
  };
}

function secretFile(value: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'sink-secret-')), 'password');
  writeFileSync(path, `${value}\n`);
  return path;
}

async function rowCount(s: Scenario): Promise<number> {
  const [row] = await s.admin.query<{ n: string }>(
    `SELECT count() AS n FROM ${s.database}.usage_events_final`,
  );
  return Number(row?.n ?? 0);
}

async function databaseExists(s: Scenario): Promise<boolean> {
  const rows = await s.admin.query<{ name: string }>(
    `SELECT name FROM system.databases WHERE name = '${s.database}'`,
  );
  return rows.length > 0;
}

/** Exits non-zero within the time limit; returns its log for assertions. */
async function expectFailedStart(sink: ServiceProcess): Promise<string> {
  let code: number | null;
  try {
    code = await sink.waitForExit(45_000);
  } catch (error) {
    throw new Error(`${(error as Error).message}; it kept running:\n${sink.tail(20)}`);
  }
  expect(code, sink.tail(20)).not.toBe(0);
  return sink.output.join('\n');
}

function expectNoPasswordInLogs(...processes: Array<{ output: string[] }>): void {
  for (const process of processes) {
    const leaked = process.output.filter(
      (line) => line.includes(WRITER.password) || line.includes(MIGRATOR.password),
    );
    expect(leaked, 'log lines containing a ClickHouse password').toEqual([]);
  }
}

/**
 * What each of our two users ran on the scenario's database (system.query_log; their profiles log queries):
 * the statement's first word, and for an INSERT its table ("INSERT usage_events").
 */
async function statementsByUser(s: Scenario): Promise<Record<string, string[]>> {
  await s.admin.command('SYSTEM FLUSH LOGS');
  // type 2: QueryFinish (an integer on 18.16).
  const rows = await s.admin.query<{ user: string; query: string }>(
    `SELECT user, query FROM system.query_log
     WHERE type = 2 AND position(query, '${s.database}') > 0
       AND user IN ('${WRITER.user}', '${MIGRATOR.user}')`,
  );
  const result: Record<string, Set<string>> = {};
  for (const row of rows) {
    const verb = (/^\s*(\w+)/.exec(row.query)?.[1] ?? '?').toUpperCase();
    const table = verb === 'INSERT' ? /^\s*INSERT\s+INTO\s+[`\w]+\.`?(\w+)/i.exec(row.query)?.[1] : undefined;
    (result[row.user] ??= new Set()).add(table ? `${verb} ${table}` : verb);
  }
  return Object.fromEntries(Object.entries(result).map(([user, verbs]) => [user, [...verbs].sort()]));
}

/** Runs the migrate-only command (what a separate migration job runs) to completion. */
async function runMigrateCommand(
  env: Record<string, string>,
): Promise<{ code: number | null; output: string[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/clickhouse-sink/src/migrate.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const keep = (chunk: Buffer) => output.push(...String(chunk).split('\n').filter(Boolean));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, output };
}

describe('clickhouse-sink with an everyday user that may not run DDL (ClickHouse 18.16)', () => {
  it('alone, it stops at start-up with an error saying the user may not run DDL and what to set', async () => {
    const s = await scenario();
    const sink = startService('clickhouse-sink', s.env);
    const log = await expectFailedStart(sink);
    expect(log).toMatch(/DDL/);
    expect(log).toMatch(/CLICKHOUSE_MIGRATION_USER/);
    expect(log).toMatch(/CLICKHOUSE_MIGRATE=false/);
    expect(await databaseExists(s)).toBe(false);
    expectNoPasswordInLogs(sink);
  });

  it('with CLICKHOUSE_MIGRATION_USER, migrations run as that user and rows are inserted as the everyday one', async () => {
    const s = await scenario({
      CLICKHOUSE_MIGRATION_USER: MIGRATOR.user,
      CLICKHOUSE_MIGRATION_PASSWORD_FILE: secretFile(MIGRATOR.password),
    });
    const events = makeUsageEvents(300, 71);
    await produceUsageEvents(s.topic, events);
    const sink = startService('clickhouse-sink', s.env);
    await waitFor(
      `${events.length} rows`,
      async () => (await rowCount(s).catch(() => 0)) === events.length,
      60_000,
      300,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${sink.tail(30)}`);
    });
    expect(sink.output.some((line) => line.includes('migration applied'))).toBe(true);
    const byUser = await statementsByUser(s);
    expect(byUser[MIGRATOR.user]).toEqual(expect.arrayContaining(['CREATE', 'INSERT schema_migrations']));
    expect(byUser[MIGRATOR.user]).not.toContain('INSERT usage_events');
    expect(byUser[WRITER.user]).toContain('INSERT usage_events');
    expect(byUser[WRITER.user]).not.toContain('CREATE');
    expectNoPasswordInLogs(sink);
  });

  it('with CLICKHOUSE_MIGRATE=false it only checks the schema: stops naming the command until a job migrated', async () => {
    const s = await scenario({ CLICKHOUSE_MIGRATE: 'false' });
    const early = startService('clickhouse-sink', s.env);
    const log = await expectFailedStart(early);
    expect(log).toMatch(/schema/);
    expect(log).toMatch(/services\/clickhouse-sink\/src\/migrate\.ts/);
    expect(await databaseExists(s)).toBe(false);

    const job = await runMigrateCommand({
      CLICKHOUSE_URL: s.env.CLICKHOUSE_URL!,
      CLICKHOUSE_DATABASE: s.database,
      CLICKHOUSE_USER: WRITER.user,
      CLICKHOUSE_PASSWORD: WRITER.password,
      CLICKHOUSE_MIGRATION_USER: MIGRATOR.user,
      CLICKHOUSE_MIGRATION_PASSWORD: MIGRATOR.password,
    });
    expect(job.code, job.output.join('\n')).toBe(0);
    const [applied] = await s.admin.query<{ n: string }>(
      `SELECT count() AS n FROM ${s.database}.schema_migrations FINAL`,
    );
    expect(Number(applied!.n)).toBe(MIGRATIONS.length);

    const events = makeUsageEvents(200, 72);
    await produceUsageEvents(s.topic, events);
    const sink = startService('clickhouse-sink', s.env);
    await waitFor(
      `${events.length} rows`,
      async () => (await rowCount(s)) === events.length,
      60_000,
      300,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${sink.tail(30)}`);
    });
    expect(sink.output.some((line) => line.includes('migration applied'))).toBe(false);
    expect((await statementsByUser(s))[WRITER.user]).not.toContain('CREATE');
    expectNoPasswordInLogs(early, sink, job);
  });
});
