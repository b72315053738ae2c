import { ErrorCodes, type UsageEvent } from '@gpu-meter/kit/contracts';
import { DEAD_LETTER_HEADERS, deadLetterMessage } from '@gpu-meter/kit/kafka';
import type { KafkaMessage, Message } from 'kafkajs';
import type { Step } from './driver.js';
import type { CommitEntry } from './task.js';

const SERVICE = 'usage-aggregator';

/**
 * What one task has decided but not yet committed: the messages of one or more consecutive steps and the
 * latest step's commit point. Steps accumulate here while the previous transaction is still committing, so
 * one transaction carries many fetched batches. Committing an outbox writes exactly the state of its last
 * step (the commit point is computed from the task after that step); losing it is a crash before commit.
 */
export class Outbox {
  readonly deadLetters: Message[] = [];
  readonly late: Message[] = [];
  readonly events: UsageEvent[] = [];
  commits: CommitEntry[] = [];
  /** Records (and idle ticks) whose outcome is in here: a bound on what a failed commit must redo. */
  records = 0;
  steps = 0;

  /**
   * Adds a step. Dead letters and late records carry their source record's bytes, so they are built now,
   * from the batch that produced them (every ref of a step points into that batch).
   */
  add(step: Step, batch: readonly KafkaMessage[], records: number): void {
    if (step.deadLetters.length > 0 || step.late.length > 0) {
      const byOffset = new Map(batch.map((m) => [m.offset, m]));
      const source = (ref: { offset: number }) => {
        const m = byOffset.get(String(ref.offset));
        return { key: m?.key ?? null, value: m?.value ?? null, headers: m?.headers };
      };
      for (const d of step.deadLetters)
        this.deadLetters.push(
          deadLetterMessage(
            { ...d, offset: String(d.offset), ...source(d) },
            { code: d.code, message: d.reason, service: SERVICE },
          ),
        );
      for (const l of step.late) {
        const message = deadLetterMessage(
          { ...l, offset: String(l.offset), ...source(l) },
          { code: ErrorCodes.LATE_SAMPLE.code, message: l.reason, service: SERVICE },
        );
        this.late.push({
          ...message,
          headers: { ...message.headers, [DEAD_LETTER_HEADERS.reason]: l.reason },
        });
      }
    }
    for (const e of step.events) this.events.push(e);
    if (step.commits.length > 0) this.commits = step.commits;
    this.records += records;
    this.steps += 1;
  }

  get empty(): boolean {
    return this.steps === 0;
  }
}
