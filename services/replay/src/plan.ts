import { ErrorCodes } from '@gpu-meter/kit/contracts';
import { DEAD_LETTER_HEADERS } from '@gpu-meter/kit/kafka';
import type { IHeaders, Message } from 'kafkajs';

/**
 * Which dead-lettered (or late) records to replay, where to, and with which headers. Pure: the records
 * come in as values, the decisions go out as values; replay.ts does the Kafka I/O.
 */

/** Header naming the dead-letter record a replayed record is a copy of: `<topic>:<partition>:<offset>`. */
export const REPLAYED_FROM_HEADER = 'gpu-meter.replayed-from';

/** Headers only a dead letter has; dropped on replay so the copy looks like the original record. */
const DEAD_LETTER_ONLY_HEADERS = new Set<string>([
  ...Object.values(DEAD_LETTER_HEADERS),
  'gpu-meter.value.bytes', // collectors: size of a value left out
  'gpu-meter.openmeter.response', // openmeter-forwarder: OpenMeter's answer
  REPLAYED_FROM_HEADER, // an earlier replay's: replaced by this one's
]);

/** The aggregator's error code on late samples (LATE_POLICY=late-topic). */
export const LATE_SAMPLE_CODE = ErrorCodes.LATE_SAMPLE.code;

/** Dead letters that are not a record of their source topic: runai-collector's report of a pod it could not plan (JSON). */
export const NOT_A_RECORD_CODES = [ErrorCodes.POD_REJECTED.code] as const;

/**
 * Services that dead-letter records they read from the shared usage-events topic (their SERVICE_NAME).
 * Every other reader of that topic already took such a record, so it never goes back there.
 */
export const USAGE_EVENTS_READERS = ['clickhouse-sink', 'openmeter-forwarder'] as const;

export interface DeadLetterRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestampMs: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: IHeaders;
}

export interface ReplayFilters {
  /** Replay only records with one of these error codes (empty: any). */
  readonly errorCodes: readonly string[];
  /** Replay only records dead-lettered from one of these topics (empty: any). */
  readonly sourceTopics: readonly string[];
}

export interface PlanOptions extends ReplayFilters {
  /** Send every selected record here instead of its source topic. */
  readonly toTopic?: string | undefined;
  /** Replay at most this many records in one run; a later run goes on. */
  readonly maxRecords: number;
  /** Sample dead letters older than this are refused: the aggregator no longer recognises their twins. */
  readonly maxAgeMs: number;
  readonly allowPastDedupe: boolean;
}

export interface Target {
  readonly topic: string;
  /** The record's source partition when it goes back to its source topic; else the key decides. */
  readonly partition?: number;
}

export type Decision =
  | { readonly kind: 'replay'; readonly record: DeadLetterRecord; readonly target: Target }
  | { readonly kind: 'passed-over'; readonly record: DeadLetterRecord }
  | { readonly kind: 'refused'; readonly record: DeadLetterRecord; readonly reason: string };

/** A header's value as text (kafkajs hands out Buffers; an array takes its first value). */
export function headerText(headers: IHeaders, name: string): string | undefined {
  const raw = headers[name];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.toString('utf8');
}

export function describeRecord(record: DeadLetterRecord) {
  const partition = headerText(record.headers, DEAD_LETTER_HEADERS.sourcePartition);
  return {
    sourceTopic: headerText(record.headers, DEAD_LETTER_HEADERS.sourceTopic),
    sourcePartition: partition !== undefined && /^\d+$/.test(partition) ? Number(partition) : undefined,
    errorCode: headerText(record.headers, DEAD_LETTER_HEADERS.errorCode) ?? 'none',
    service: headerText(record.headers, DEAD_LETTER_HEADERS.service),
  };
}

export function selected(record: DeadLetterRecord, filters: ReplayFilters): boolean {
  const { sourceTopic, errorCode } = describeRecord(record);
  return (
    (filters.errorCodes.length === 0 || filters.errorCodes.includes(errorCode)) &&
    (filters.sourceTopics.length === 0 ||
      (sourceTopic !== undefined && filters.sourceTopics.includes(sourceTopic)))
  );
}

/** Where a selected record goes, or why it cannot be replayed as asked. */
export function targetOf(
  record: DeadLetterRecord,
  options: Pick<PlanOptions, 'toTopic' | 'maxAgeMs' | 'allowPastDedupe'>,
  nowMs: number,
): Target | { refused: string } {
  const { sourceTopic, sourcePartition, errorCode, service } = describeRecord(record);
  if (record.value === null)
    return { refused: 'no bytes to replay (the value was left out when dead-lettered)' };
  if (service !== undefined && (USAGE_EVENTS_READERS as readonly string[]).includes(service)) {
    // A usage event one reader failed on: the others (clickhouse-sink, openmeter-forwarder, subscribers)
    // already have it, and a second copy on their topic reaches all of them again.
    // Its own replay topic is read by the one-off instance alone: going back there is safe.
    const shared = sourceTopic !== replayTopicFor(service);
    if (options.toTopic === undefined || (options.toTopic === sourceTopic && shared))
      return {
        refused:
          `dead-lettered by ${service} from ${sourceTopic ?? 'the usage-events topic'}, which every usage ` +
          `reader consumes: replaying it there delivers it again to all of them. Use --to-topic ` +
          `${replayTopicFor(service)} and run one ${service} on it (services/replay/README.md)`,
      };
    return { topic: options.toTopic };
  }
  if (errorCode === LATE_SAMPLE_CODE && options.toTopic === undefined)
    return {
      refused:
        'a late sample: the aggregator remembered its id when it came, so back on its raw topic it is dropped ' +
        'as a duplicate (for DEDUPE_RETENTION_MS). Name the receiver with --to-topic (services/replay/README.md)',
    };
  const topic = options.toTopic ?? sourceTopic;
  if (topic === undefined)
    return { refused: `no ${DEAD_LETTER_HEADERS.sourceTopic} header: name the target with --to-topic` };
  if (topic !== sourceTopic) return { topic };
  if ((NOT_A_RECORD_CODES as readonly string[]).includes(errorCode))
    return {
      refused:
        `${errorCode} is a report of a pod the collector could not plan, not a sample: nothing to replay ` +
        '(fix the pod; the collector samples it from its next grid point)',
    };
  const ageMs = nowMs - record.timestampMs;
  if (errorCode !== LATE_SAMPLE_CODE && !options.allowPastDedupe && ageMs > options.maxAgeMs)
    return {
      refused:
        `dead-lettered ${Math.floor(ageMs / 3_600_000)} h ago, over --max-age-ms ${options.maxAgeMs}: the ` +
        'aggregator no longer recognises a copy of the sample it may have counted then ' +
        '(DEDUPE_RETENTION_MS); --allow-past-dedupe replays it anyway',
    };
  // Back into its own partition: the aggregator dedupes per task (partition), so a copy of a sample it
  // counted is recognised only there.
  return sourcePartition === undefined ? { topic } : { topic, partition: sourcePartition };
}

/** The topic a usage reader's dead letters are replayed to, read by a one-off instance of that reader. */
export function replayTopicFor(service: string): string {
  return service === 'clickhouse-sink' ? 'usage.sink-replay.v1' : 'usage.openmeter-replay.v1';
}

/** The replayed copy: the original key and bytes, the original headers, and where it was replayed from. */
export function replayMessage(record: DeadLetterRecord, target: Target): Message {
  const headers: IHeaders = {};
  for (const [name, value] of Object.entries(record.headers))
    if (!DEAD_LETTER_ONLY_HEADERS.has(name) && value !== undefined) headers[name] = value;
  headers[REPLAYED_FROM_HEADER] = `${record.topic}:${record.partition}:${record.offset}`;
  return {
    key: record.key,
    value: record.value,
    headers,
    ...(target.partition === undefined ? {} : { partition: target.partition }),
  };
}

/**
 * Decides the undecided records of one run, in (partition, offset) order: filtered out → passed over
 * (pending for a later run), else replayed or refused. Stops before the record that would exceed
 * `maxRecords` replays. `frontier` per partition (for `advanceCursor`): everything below it was decided;
 * the end of what was read when the run got through, else where it stopped (or, for a partition not
 * reached, where it started).
 */
export function planReplay(
  records: readonly DeadLetterRecord[],
  bounds: ReadonlyMap<number, { readonly start: number; readonly end: number }>,
  options: PlanOptions,
  nowMs: number,
): { decisions: Decision[]; frontier: Map<number, number>; complete: boolean } {
  const ordered = [...records].sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  const decisions: Decision[] = [];
  const frontier = new Map([...bounds].map(([partition, { end }]) => [partition, end]));
  let replays = 0;
  for (const record of ordered) {
    if (selected(record, options) && replays >= options.maxRecords) {
      frontier.set(record.partition, record.offset);
      for (const [partition, { start }] of bounds)
        if (partition > record.partition) frontier.set(partition, start);
      return { decisions, frontier, complete: false };
    }
    if (!selected(record, options)) {
      decisions.push({ kind: 'passed-over', record });
      continue;
    }
    const target = targetOf(record, options, nowMs);
    if ('refused' in target) {
      decisions.push({ kind: 'refused', record, reason: target.refused });
    } else {
      decisions.push({ kind: 'replay', record, target });
      replays += 1;
    }
  }
  return { decisions, frontier, complete: true };
}

export interface SummaryRow {
  readonly kind: Decision['kind'];
  readonly sourceTopic: string;
  readonly errorCode: string;
  /** Target topic (replay) or reason (refused); empty for passed over. */
  readonly detail: string;
  readonly records: number;
}

/** Records per (decision, source topic, error code, target or reason), in first-seen order. */
export function summarize(decisions: readonly Decision[]): SummaryRow[] {
  const rows = new Map<string, { -readonly [K in keyof SummaryRow]: SummaryRow[K] }>();
  for (const decision of decisions) {
    const { sourceTopic = '(none)', errorCode } = describeRecord(decision.record);
    const detail =
      decision.kind === 'replay' ? decision.target.topic : decision.kind === 'refused' ? decision.reason : '';
    const key = JSON.stringify([decision.kind, sourceTopic, errorCode, detail]);
    const row = rows.get(key) ?? { kind: decision.kind, sourceTopic, errorCode, detail, records: 0 };
    row.records += 1;
    rows.set(key, row);
  }
  return [...rows.values()];
}
