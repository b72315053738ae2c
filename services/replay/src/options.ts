import { parseArgs } from 'node:util';
import type { PlanOptions } from './plan.js';

export const USAGE = `usage: npm run replay -- --topic DLQ_OR_LATE_TOPIC [options]

  --topic TOPIC          dead-letter or late-samples topic to replay (required)
  --dry-run              list what would be replayed (per source topic and error code); change nothing
  --error-code CODE      replay only records with this gpu-meter.error.code (repeatable)
  --source-topic TOPIC   replay only records dead-lettered from this topic (repeatable)
  --to-topic TOPIC       send the records here instead of their source topic
  --max-records N        replay at most N records this run (default 10000); run again for the rest
  --max-age-ms MS        refuse sample dead letters older than this (default 82800000 = 23 h, under the
                         aggregator's DEDUPE_RETENTION_MS of 24 h)
  --allow-past-dedupe    replay sample dead letters older than --max-age-ms anyway
  --help                 this text

Kafka settings come from KAFKA_* variables as for the services (docs/configuration.md#replay).
Records filtered out stay pending: a later run without the filter replays them.`;

export interface ReplayCommand extends PlanOptions {
  readonly topic: string;
  readonly dryRun: boolean;
}

/** A bad command line: the message names the option; main prints it with the usage and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

function topicName(option: string, value: string): string {
  // Kafka's own rule for topic names.
  if (!/^[a-zA-Z0-9._-]{1,249}$/.test(value))
    throw new UsageError(
      `--${option} must be a Kafka topic name ([a-zA-Z0-9._-], 1-249 chars), got ${JSON.stringify(value)}`,
    );
  return value;
}

function positiveInt(option: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`--${option} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

/** Parses the command line; `help` when --help was asked for. */
export function parseReplayArgs(argv: readonly string[]): ReplayCommand | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        topic: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        'error-code': { type: 'string', multiple: true, default: [] },
        'source-topic': { type: 'string', multiple: true, default: [] },
        'to-topic': { type: 'string' },
        'max-records': { type: 'string', default: '10000' },
        'max-age-ms': { type: 'string', default: '82800000' },
        'allow-past-dedupe': { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    // node's messages name the option: "Unknown option '--topc'", "Option '--topic <value>' argument missing".
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  if (values.topic === undefined) throw new UsageError('--topic is required');
  const errorCodes = values['error-code'].map((code) => {
    if (!/^[A-Z0-9_]+$/.test(code))
      throw new UsageError(
        `--error-code must be a code such as GPUM_DECODE_FAILED, got ${JSON.stringify(code)}`,
      );
    return code;
  });
  const topic = topicName('topic', values.topic);
  const toTopic = values['to-topic'] === undefined ? undefined : topicName('to-topic', values['to-topic']);
  if (toTopic === topic) throw new UsageError('--to-topic must differ from --topic');
  return {
    topic,
    dryRun: values['dry-run'],
    errorCodes,
    sourceTopics: values['source-topic'].map((t) => topicName('source-topic', t)),
    toTopic,
    maxRecords: positiveInt('max-records', values['max-records']),
    maxAgeMs: positiveInt('max-age-ms', values['max-age-ms']),
    allowPastDedupe: values['allow-past-dedupe'],
  };
}
