import { USAGE_QUANTITIES, type UsageQuantity } from '@gpu-meter/kit';

/** Totals per billing subject and quantity, the unit an invoice is made of. */
export type SubjectTotals = Map<string, Record<UsageQuantity, number>>;

export type QuantityRow = { subject: string } & Partial<Record<UsageQuantity, number>>;

/** Sums rows (usage events, expected totals, ClickHouse rows, CloudEvent data) per subject. */
export function totalsBySubject(rows: Iterable<QuantityRow>): SubjectTotals {
  const totals: SubjectTotals = new Map();
  for (const row of rows) {
    let subject = totals.get(row.subject);
    if (!subject) {
      subject = Object.fromEntries(USAGE_QUANTITIES.map((q) => [q, 0])) as Record<UsageQuantity, number>;
      totals.set(row.subject, subject);
    }
    for (const quantity of USAGE_QUANTITIES) subject[quantity] += Number(row[quantity] ?? 0);
  }
  return totals;
}

/**
 * DESIGN.md §6: times are integer milliseconds and compare exactly; products of fractions and bytes compare
 * to 1e-9 relative. Every quantity here is a double built from such products, so 1e-9 relative (with an
 * absolute floor for zero) is the bound; an exact time total passes it trivially.
 */
export function agrees(expected: number, actual: number): boolean {
  const scale = Math.max(Math.abs(expected), Math.abs(actual));
  return Math.abs(expected - actual) <= Math.max(1e-9 * scale, 1e-6);
}

export interface ComparisonRow {
  subject: string;
  quantity: UsageQuantity;
  values: Record<string, number>;
  ok: boolean;
}

/** One row per (subject, quantity) present anywhere; a source missing a subject counts as zeros. */
export function compareSources(sources: Record<string, SubjectTotals>): ComparisonRow[] {
  const names = Object.keys(sources);
  const subjects = [...new Set(names.flatMap((name) => [...sources[name]!.keys()]))].sort();
  const rows: ComparisonRow[] = [];
  for (const subject of subjects) {
    for (const quantity of USAGE_QUANTITIES) {
      const values = Object.fromEntries(
        names.map((name) => [name, sources[name]!.get(subject)?.[quantity] ?? 0]),
      );
      const reference = values[names[0]!]!;
      const ok = names.every((name) => agrees(reference, values[name]!));
      if (!ok || Object.values(values).some((value) => value !== 0))
        rows.push({ subject, quantity, values, ok });
    }
  }
  return rows;
}

function formatNumber(value: number): string {
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value);
  return value.toPrecision(12);
}

export function renderTable(rows: ComparisonRow[]): string {
  if (rows.length === 0) return '(no usage)';
  const names = Object.keys(rows[0]!.values);
  const header = ['subject', 'quantity', ...names, 'ok'];
  const body = rows.map((row) => [
    row.subject,
    row.quantity,
    ...names.map((name) => formatNumber(row.values[name]!)),
    row.ok ? 'ok' : 'DIFF',
  ]);
  const widths = header.map((cell, i) => Math.max(cell.length, ...body.map((line) => line[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
