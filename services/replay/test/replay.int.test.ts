import { spawnSync } from 'node:child_process';
import { createLogger } from '@gpu-meter/kit/runtime';
import { createKafka, DEAD_LETTER_HEADERS, deadLetterMessage } from '@gpu-meter/kit/kafka';
import type { Message } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  createTopics,
  readTopic,
  stackEnv,
  testAdmin,
  testKafka,
  uniqueName,
  type ReadRecord,
} from '../../../test/support/kafka.js';
import { REPO_ROOT } from '../../../test/support/stack-env.js';
import { loadConfig } from '../src/config.js';
import { parseReplayArgs } from '../src/options.js';
import { REPLAYED_FROM_HEADER } from '../src/plan.js';
import { replayGroupId, ReplayRefused, runReplay, type ReplayHooks } from '../src/replay.js';

const logger = createLogger('replay-test', 'silent');

/** Runs a TypeScript entry point of this folder as its own process, against the stack's Kafka. */
function runScript(script: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', `services/replay/${script}`, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, KAFKA_BROKERS: stackEnv().KAFKA_BROKERS, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
}

function replay(args: string[], hooks: ReplayHooks = {}) {
  const command = parseReplayArgs(args);
  if (command === 'help') throw new Error('unexpected help');
  const kafka = createKafka(loadConfig({ KAFKA_BROKERS: stackEnv().KAFKA_BROKERS }), 'replay-test', logger);
  return runReplay(kafka, command, logger, hooks);
}

/** Dead letters as the aggregator writes them: in transactions, one of them aborted (never a dead letter). */
async function writeDeadLetters(dlq: string, source: string, codes: string[], aborted = 1) {
  const producer = testKafka().producer({
    transactionalId: uniqueName('aggregator'),
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  const originals: Message[] = [];
  const letters = codes.map((code, i) => {
    const original = {
      key: Buffer.from(`cluster-a/pod-${i}`),
      value: Buffer.from([0, 0, 0, 0, 9, i, 255 - i]),
      headers: { traceparent: Buffer.from(`trace-${i}`) },
    };
    originals.push(original);
    return deadLetterMessage(
      { topic: source, partition: i % 3, offset: String(100 + i), ...original },
      { code, message: 'schema 9 not found', service: 'usage-aggregator' },
    );
  });
  // Two committed transactions around an aborted one: markers and an aborted record inside the range.
  const half = Math.ceil(letters.length / 2);
  for (const [part, commit] of [
    [letters.slice(0, half), true],
    [Array.from({ length: aborted }, () => ({ key: 'aborted', value: 'aborted' })), false],
    [letters.slice(half), true],
  ] as const) {
    const transaction = await producer.transaction();
    await transaction.send({ topic: dlq, messages: [...part] });
    await (commit ? transaction.commit() : transaction.abort());
  }
  await producer.disconnect();
  return originals;
}

async function scenario(codes: string[]) {
  const dlq = uniqueName('replay-dlq');
  const source = uniqueName('replay-raw');
  const admin = await testAdmin();
  await createTopics(admin, [dlq], 1);
  await createTopics(admin, [source], 3);
  const originals = await writeDeadLetters(dlq, source, codes);
  return { dlq, source, originals };
}

/** Everything on the topic now (read_committed unless told), waiting until it has been quiet. */
const everything = (topic: string, readUncommitted = false) =>
  readTopic(topic, { idleMs: 2500, readUncommitted });

function expectEachOnce(records: ReadRecord[], originals: Message[], indexes: number[], dlq: string) {
  const byKey = new Map<string, ReadRecord[]>();
  for (const r of records) byKey.set(String(r.message.key), [...(byKey.get(String(r.message.key)) ?? []), r]);
  expect([...byKey.keys()].sort()).toEqual(indexes.map((i) => String(originals[i]!.key)).sort());
  for (const i of indexes) {
    const copies = byKey.get(String(originals[i]!.key))!;
    expect(copies, `copies of record ${i}`).toHaveLength(1);
    const { message, partition } = copies[0]!;
    expect(Buffer.compare(message.value!, originals[i]!.value as Buffer)).toBe(0);
    expect(partition).toBe(i % 3); // back into its source partition: the aggregator task that dedupes it
    expect(String(message.headers!.traceparent)).toBe(`trace-${i}`);
    expect(String(message.headers![REPLAYED_FROM_HEADER])).toMatch(new RegExp(`^${dlq}:0:\\d+$`));
    expect(message.headers![DEAD_LETTER_HEADERS.errorCode]).toBeUndefined();
  }
}

describe('npm run replay', () => {
  it('replays each dead letter exactly once; again replays nothing; filtered-out records stay for later', async () => {
    const codes = [
      'GPUM_DECODE_FAILED',
      'GPUM_VALIDATION_FAILED',
      'GPUM_DECODE_FAILED',
      'GPUM_DECODE_FAILED',
      'GPUM_DECODE_FAILED',
      'GPUM_DECODE_FAILED',
    ];
    const { dlq, source, originals } = await scenario(codes);
    const decode = [0, 2, 3, 4, 5];

    const dry = await replay(['--topic', dlq, '--dry-run']);
    expect(dry.rows.map((r) => [r.kind, r.sourceTopic, r.errorCode, r.records])).toEqual([
      ['replay', source, 'GPUM_DECODE_FAILED', 5],
      ['replay', source, 'GPUM_VALIDATION_FAILED', 1],
    ]);
    expect(dry.replayed).toBe(0);

    const first = await replay(['--topic', dlq, '--error-code', 'GPUM_DECODE_FAILED']);
    expect(first.replayed).toBe(5);
    expectEachOnce(await everything(source), originals, decode, dlq);

    const again = await replay(['--topic', dlq, '--error-code', 'GPUM_DECODE_FAILED']);
    expect(again.replayed).toBe(0);
    expectEachOnce(await everything(source), originals, decode, dlq);

    // The record the filter passed over is still pending: a run without the filter replays it, once.
    const rest = await replay(['--topic', dlq]);
    expect(rest.replayed).toBe(1);
    expect((await replay(['--topic', dlq])).replayed).toBe(0);
    expectEachOnce(await everything(source), originals, [...decode, 1], dlq);

    const [offsets] = await (await testAdmin()).fetchOffsets({ groupId: replayGroupId(dlq), topics: [dlq] });
    expect(offsets!.partitions[0]).toMatchObject({ offset: String(rest.read[0]!.end) });
  });

  it('a run killed inside its transaction leaves nothing behind; the next run delivers each record once', async () => {
    const { dlq, source, originals } = await scenario([
      'GPUM_DECODE_FAILED',
      'GPUM_DECODE_FAILED',
      'GPUM_DECODE_FAILED',
      'GPUM_DECODE_FAILED',
    ]);
    const killed = runScript('test/support/kill-mid-transaction.ts', [dlq]);
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    expect(killed.stdout).toContain('sent, killing');
    // The killed run did write its copies, inside a transaction nobody committed.
    expect(await everything(source, true)).toHaveLength(4);

    const next = await replay(['--topic', dlq]);
    expect(next.replayed).toBe(4);
    expectEachOnce(await everything(source), originals, [0, 1, 2, 3], dlq);
    expect((await replay(['--topic', dlq])).replayed).toBe(0);
  });

  it('an injected failure before the commit aborts the whole run; the next run delivers each record once', async () => {
    const { dlq, source, originals } = await scenario([
      'GPUM_DECODE_FAILED',
      'GPUM_DECODE_FAILED',
      'GPUM_DECODE_FAILED',
    ]);
    await expect(
      replay(['--topic', dlq], {
        beforeCommit: () => Promise.reject(new Error('injected: broker gone')),
      }),
    ).rejects.toThrow('injected');
    expect(await everything(source)).toHaveLength(0);
    expect((await replay(['--topic', dlq])).replayed).toBe(3);
    expectEachOnce(await everything(source), originals, [0, 1, 2], dlq);
  });

  it('refuses usage events a usage reader dead-lettered back onto the usage topic, writing nothing', async () => {
    const dlq = uniqueName('replay-om-dlq');
    const usage = uniqueName('replay-usage');
    const admin = await testAdmin();
    await createTopics(admin, [dlq, usage], 1);
    const producer = testKafka().producer();
    await producer.connect();
    await producer.send({
      topic: dlq,
      messages: [
        deadLetterMessage(
          { topic: usage, partition: 0, offset: '5', key: Buffer.from('acme'), value: Buffer.from('event') },
          { code: 'GPUM_SINK_REJECTED', message: 'OpenMeter answered 400', service: 'openmeter-forwarder' },
        ),
      ],
    });
    await producer.disconnect();
    const refused = await replay(['--topic', dlq]).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ReplayRefused);
    expect((refused as Error).message).toMatch(/cannot be replayed/);
    expect((refused as ReplayRefused).report.rows[0]!.detail).toMatch(/--to-topic usage.openmeter-replay.v1/);
    expect(await everything(usage)).toHaveLength(0);

    const replayTopic = uniqueName('replay-om-replay');
    await createTopics(admin, [replayTopic], 1);
    expect((await replay(['--topic', dlq, '--to-topic', replayTopic])).replayed).toBe(1);
    const [copy] = await everything(replayTopic);
    expect(String(copy!.message.value)).toBe('event');
    expect(await everything(usage)).toHaveLength(0);
  });

  it('the command line: a dry run prints the counts; a bad option exits 2 naming it', async () => {
    const { dlq, source } = await scenario(['GPUM_DECODE_FAILED', 'GPUM_DECODE_FAILED']);
    const run = (args: string[]) => runScript('src/main.ts', args);
    const dry = run(['--topic', dlq, '--dry-run']);
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/would replay 2 record\(s\) \(dry run/);
    expect(dry.stdout).toMatch(new RegExp(`${source}\\s+GPUM_DECODE_FAILED\\s+2\\s+${source}`));
    const bad = run(['--topic', dlq, '--max-records', 'many']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--max-records must be a positive integer/);
    const noBrokers = runScript('src/main.ts', ['--topic', dlq], { KAFKA_BROKERS: '' });
    expect(noBrokers.status).toBe(1);
    expect(noBrokers.stderr).toMatch(/KAFKA_BROKERS/);
    expect(await everything(source)).toHaveLength(0);
  });
});
