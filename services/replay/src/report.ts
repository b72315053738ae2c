import { describeRecord, type Decision } from './plan.js';
import type { ReplayReport } from './replay.js';

/** At most this many records are listed one by one (the counts cover all). */
const LISTED_RECORDS = 50;

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`.trimEnd();
  return [line(header), ...rows.map(line)];
}

function recordLine(decision: Decision): string {
  const { record } = decision;
  const { sourceTopic, errorCode } = describeRecord(record);
  const key = record.key === null ? 'null' : JSON.stringify(record.key.toString('utf8').slice(0, 80));
  const to =
    decision.kind === 'replay'
      ? `-> ${decision.target.topic}${decision.target.partition === undefined ? '' : `[${decision.target.partition}]`}`
      : decision.kind === 'refused'
        ? 'refused'
        : 'passed over';
  return `  ${record.partition}@${record.offset} ${errorCode} from ${sourceTopic ?? '(none)'} key=${key} ${to}`;
}

/** The human-readable report of a run (stdout). */
export function formatReport(report: ReplayReport): string {
  const lines: string[] = [];
  const read = report.read.map((r) => `partition ${r.partition} offsets ${r.start}..${r.end}`).join(', ');
  lines.push(`${report.topic} (replay group ${report.group}): read ${read}`);
  const count = (kind: Decision['kind']) =>
    report.rows.filter((r) => r.kind === kind).reduce((n, r) => n + r.records, 0);
  const replays = report.rows.filter((r) => r.kind === 'replay');
  if (replays.length === 0) {
    lines.push('nothing to replay');
  } else {
    lines.push(
      report.dryRun
        ? `would replay ${count('replay')} record(s) (dry run: nothing written):`
        : report.replayed > 0
          ? `replayed ${report.replayed} record(s), committed with the replay group's offsets:`
          : `would replay ${count('replay')} record(s), but nothing was written:`,
    );
    lines.push(
      ...table(
        ['source topic', 'error code', 'records', 'to'],
        replays.map((r) => [r.sourceTopic, r.errorCode, String(r.records), r.detail]),
      ),
    );
  }
  const passed = report.rows.filter((r) => r.kind === 'passed-over');
  if (passed.length > 0) {
    lines.push(`passed over by the filters, left pending for a later run: ${count('passed-over')}`);
    lines.push(
      ...table(
        ['source topic', 'error code', 'records'],
        passed.map((r) => [r.sourceTopic, r.errorCode, String(r.records)]),
      ),
    );
  }
  const refused = report.rows.filter((r) => r.kind === 'refused');
  if (refused.length > 0) {
    lines.push(`refused: ${count('refused')}`);
    lines.push(
      ...table(
        ['source topic', 'error code', 'records', 'reason'],
        refused.map((r) => [r.sourceTopic, r.errorCode, String(r.records), r.detail]),
      ),
    );
  }
  if (report.dryRun && report.decisions.length > 0) {
    lines.push(`records${report.decisions.length > LISTED_RECORDS ? ` (first ${LISTED_RECORDS})` : ''}:`);
    lines.push(...report.decisions.slice(0, LISTED_RECORDS).map(recordLine));
  }
  if (!report.complete) lines.push('stopped at --max-records: run again for the rest');
  return `${lines.join('\n')}\n`;
}
