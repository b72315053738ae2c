import { randomUUID } from 'node:crypto';
import type { Logger } from '@gpu-meter/kit/runtime';
import { retryConcurrentTransactions, sendInChunks } from '@gpu-meter/kit/kafka';
import type { Admin, Kafka, Message, Producer } from 'kafkajs';
import {
  advanceCursor,
  decodeCursor,
  encodeCursorMetadata,
  isUndecided,
  MAX_METADATA_BYTES,
  readStart,
  sameCursor,
  type ReplayCursor,
} from './cursor.js';
import type { ReplayCommand } from './options.js';
import {
  planReplay,
  replayMessage,
  summarize,
  type Decision,
  type DeadLetterRecord,
  type SummaryRow,
} from './plan.js';

/** The replay group (offsets = what was decided) and transactional id of one dead-letter topic. */
export function replayGroupId(topic: string): string {
  return `gpu-meter-replay.${topic}`;
}

/** How long reading the dead-letter topic up to its end may take (an open transaction holds it back). */
const READ_TIMEOUT_MS = 120_000;

export interface ReplayReport {
  readonly topic: string;
  readonly group: string;
  readonly dryRun: boolean;
  /** Per partition: the offsets read, [start, end). */
  readonly read: ReadonlyArray<{ partition: number; start: number; end: number }>;
  readonly rows: SummaryRow[];
  readonly decisions: readonly Decision[];
  /** False when --max-records stopped the run before the end: run again for the rest. */
  readonly complete: boolean;
  /** Records written (and the cursor committed) in this run's transaction; 0 for a dry run. */
  readonly replayed: number;
}

/** The run stopped before writing anything; the message says why and what to do. */
export class ReplayRefused extends Error {
  override readonly name = 'ReplayRefused';
  constructor(
    message: string,
    readonly report: ReplayReport,
  ) {
    super(message);
  }
}

export interface ReplayHooks {
  /** Called inside the transaction after the records were sent, before the offsets and the commit (tests). */
  beforeCommit?(): Promise<void>;
}

/**
 * One replay run. Exactly once: the records and the replay group's new offsets go in one transaction
 * under the topic's transactional id. Connecting fences an earlier run still in flight (its transaction
 * is aborted; read_committed readers never see its records) and waits for one committing, so the offsets
 * read next are final; a later run fences this one before it commits. A crash anywhere leaves either all
 * of a run or nothing, and the next run starts from the last committed offsets.
 */
export async function runReplay(
  kafka: Kafka,
  command: ReplayCommand,
  logger: Logger,
  hooks: ReplayHooks = {},
  nowMs = Date.now(),
): Promise<ReplayReport> {
  const group = replayGroupId(command.topic);
  const admin = kafka.admin();
  let producer: Producer | undefined;
  await admin.connect();
  try {
    const partitions = await topicPartitions(admin, command.topic, '--topic');
    if (!command.dryRun) {
      producer = kafka.producer({
        transactionalId: group,
        idempotent: true,
        maxInFlightRequests: 1,
        transactionTimeout: 120_000,
        allowAutoTopicCreation: false,
      });
      await producer.connect();
      // kafkajs initialises the producer id at the first transaction: InitProducerId fences an earlier run.
      await (await producer.transaction()).abort();
    }
    const cursors = await committedCursors(admin, group, command.topic);
    const ends = await admin.fetchTopicOffsets(command.topic);
    const bounds = new Map(
      partitions.map((partition) => {
        const offsets = ends.find((o) => o.partition === partition);
        const low = Number(offsets?.low ?? 0);
        const start = Math.max(low, readStart(cursors.get(partition) ?? decodeCursor(null, null)));
        return [partition, { start, end: Math.max(start, Number(offsets?.high ?? 0)) }] as const;
      }),
    );
    const records = await readRange(kafka, command.topic, bounds, logger);
    const cursorOf = (partition: number) => cursors.get(partition) ?? decodeCursor(null, null);
    const undecided = records.filter((r) => isUndecided(cursorOf(r.partition), r.offset));
    const plan = planReplay(undecided, bounds, command, nowMs);
    await refuseMissingTargets(admin, plan.decisions);
    const report: ReplayReport = {
      topic: command.topic,
      group,
      dryRun: command.dryRun,
      read: [...bounds].map(([partition, b]) => ({ partition, ...b })),
      rows: summarize(plan.decisions),
      decisions: plan.decisions,
      complete: plan.complete,
      replayed: 0,
    };
    const refused = plan.decisions.filter((d) => d.kind === 'refused');
    if (command.dryRun) return report;
    if (refused.length > 0)
      throw new ReplayRefused(
        `${refused.length} selected record(s) cannot be replayed as asked (listed above); nothing was ` +
          'replayed. Narrow the run with --error-code / --source-topic, or follow the reason given.',
        report,
      );

    const pendingAfter = new Set(plan.decisions.filter((d) => d.kind === 'passed-over').map((d) => d.record));
    const next = new Map<number, ReplayCursor>();
    for (const [partition] of bounds) {
      const seen = records
        .filter((r) => r.partition === partition)
        .map((r) => ({ offset: r.offset, pendingAfter: pendingAfter.has(r) }));
      const advanced = advanceCursor(cursorOf(partition), seen, plan.frontier.get(partition)!);
      if (Buffer.byteLength(encodeCursorMetadata(advanced)) > MAX_METADATA_BYTES)
        throw new ReplayRefused(
          `partition ${partition}: ${advanced.pending.length} ranges of filtered-out records do not fit the ` +
            'offset metadata; nothing was replayed. Replay with fewer filters or a smaller --max-records.',
          report,
        );
      if (!sameCursor(advanced, cursorOf(partition))) next.set(partition, advanced);
    }
    const messages = plan.decisions.flatMap((d) =>
      d.kind === 'replay' ? [{ topic: d.target.topic, message: replayMessage(d.record, d.target) }] : [],
    );
    if (next.size === 0 && messages.length === 0) return report;
    await transact(producer!, group, command.topic, messages, next, hooks);
    return { ...report, replayed: messages.length };
  } finally {
    await producer?.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}

async function topicPartitions(admin: Admin, topic: string, option: string): Promise<number[]> {
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] }).catch((error: unknown) => {
    if ((error as { type?: string }).type === 'UNKNOWN_TOPIC_OR_PARTITION')
      throw new Error(`${option} ${topic}: no such topic`);
    throw error;
  });
  return (topics[0]?.partitions ?? []).map((p) => p.partitionId).sort((a, b) => a - b);
}

async function committedCursors(admin: Admin, group: string, topic: string) {
  const [fetched] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return new Map(
    (fetched?.partitions ?? []).map((p) => [
      p.partition,
      decodeCursor(Number(p.offset) >= 0 ? Number(p.offset) : null, p.metadata),
    ]),
  );
}

/** A target topic that does not exist (or lacks the source partition) stops the run before it writes. */
async function refuseMissingTargets(admin: Admin, decisions: Decision[]): Promise<void> {
  const targets = [...new Set(decisions.flatMap((d) => (d.kind === 'replay' ? [d.target.topic] : [])))];
  const existing = new Set(await admin.listTopics());
  const counts = new Map<string, number>();
  for (const topic of targets.filter((t) => existing.has(t)))
    counts.set(topic, (await topicPartitions(admin, topic, 'target')).length);
  decisions.forEach((decision, index) => {
    if (decision.kind !== 'replay') return;
    const { topic, partition } = decision.target;
    const count = counts.get(topic);
    const reason =
      count === undefined
        ? `target topic ${topic} does not exist (create it, or pick another with --to-topic)`
        : partition !== undefined && partition >= count
          ? `target ${topic} has ${count} partitions, not the source partition ${partition}`
          : undefined;
    if (reason) decisions[index] = { kind: 'refused', record: decision.record, reason };
  });
}

/**
 * Reads every committed record of `topic` in [start, end) of each partition, in a throwaway group (the
 * replay group's offsets change only in a replay transaction). read_committed: an aborted dead letter
 * is not one.
 */
async function readRange(
  kafka: Kafka,
  topic: string,
  bounds: ReadonlyMap<number, { start: number; end: number }>,
  logger: Logger,
): Promise<DeadLetterRecord[]> {
  const position = new Map([...bounds].map(([partition, { start }]) => [partition, start]));
  const done = () => [...bounds].every(([partition, { end }]) => position.get(partition)! >= end);
  if (done()) return [];
  const groupId = `${replayGroupId(topic)}.reader-${randomUUID().slice(0, 8)}`;
  const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 250 });
  const records = new Map<string, DeadLetterRecord>();
  let finished!: () => void;
  const caughtUp = new Promise<void>((resolve) => (finished = resolve));
  // Every fetched batch, also one of only transaction markers or aborted records (which eachBatch never
  // sees), reports how far it got: the partition is read once that reaches the end.
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.topic !== topic) return;
    const reached = Number(payload.lastOffset) + 1;
    if (reached > (position.get(payload.partition) ?? 0)) position.set(payload.partition, reached);
    if (done()) finished();
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const { end } = bounds.get(batch.partition) ?? { end: 0 };
        const { start } = bounds.get(batch.partition) ?? { start: 0 };
        for (const m of batch.messages) {
          const offset = Number(m.offset);
          if (offset < start || offset >= end) continue;
          records.set(`${batch.partition}:${offset}`, {
            topic,
            partition: batch.partition,
            offset,
            timestampMs: Number(m.timestamp),
            key: m.key,
            value: m.value,
            headers: m.headers ?? {},
          });
        }
      },
    });
    // The group is new, so it starts at the log start; seek straight to where this run begins.
    for (const [partition, { start }] of bounds) consumer.seek({ topic, partition, offset: String(start) });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `could not read ${topic} up to its end offsets in ${READ_TIMEOUT_MS / 1000} s ` +
                `(reached ${JSON.stringify(Object.fromEntries(position))}); an open transaction holds it back?`,
            ),
          ),
        READ_TIMEOUT_MS,
      );
    });
    await Promise.race([caughtUp, timeout]).finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect().catch(() => undefined);
    const admin = kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteGroups([groupId]))
      .catch((error: unknown) => logger.debug({ err: error, groupId }, 'reader group not deleted'))
      .finally(() => admin.disconnect());
  }
  return [...records.values()];
}

/** The replayed records and the replay group's new offsets, committed together or not at all. */
async function transact(
  producer: Producer,
  group: string,
  topic: string,
  messages: ReadonlyArray<{ topic: string; message: Message }>,
  cursors: ReadonlyMap<number, ReplayCursor>,
  hooks: ReplayHooks,
): Promise<void> {
  const transaction = await producer.transaction();
  try {
    const send = (record: { topic: string; messages: Message[] }) => transaction.send(record);
    for (const target of new Set(messages.map((m) => m.topic)))
      await sendInChunks(
        send,
        target,
        messages.filter((m) => m.topic === target).map((m) => m.message),
      );
    await hooks.beforeCommit?.();
    if (cursors.size > 0)
      await retryConcurrentTransactions(() =>
        transaction.sendOffsets({
          consumerGroupId: group,
          topics: [
            {
              topic,
              partitions: [...cursors].map(([partition, cursor]) => ({
                partition,
                offset: String(cursor.next),
                metadata: encodeCursorMetadata(cursor),
              })),
            },
          ],
        }),
      );
    await transaction.commit();
  } catch (error) {
    await transaction.abort().catch(() => undefined);
    throw error;
  }
}
