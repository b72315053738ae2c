import { USAGE_QUANTITIES, type UsageQuantity } from '@gpu-meter/kit/contracts';

/**
 * docs/DESIGN.md §6.5: an invoice line is (subject, project, department, workload type, GPU type) in one window.
 * Every source (ground truth, usage topic, ClickHouse, OpenMeter) is summed per line and compared per line:
 * usage moved to the wrong SKU, tenant or window is as wrong as usage lost. Pure.
 */
export const INVOICE_DIMENSIONS = ['subject', 'project', 'department', 'workloadType', 'gpuType'] as const;
export type InvoiceDimension = (typeof INVOICE_DIMENSIONS)[number];
export type InvoiceKey = Record<InvoiceDimension, string>;

/** A usage event, a truth window row, a ClickHouse row or CloudEvent data: anything with a key and window. */
export type UsageRow = { subject: string; windowStartMs: number; windowEndMs: number } & Partial<
  Record<Exclude<InvoiceDimension, 'subject'>, string>
> &
  Partial<Record<UsageQuantity, number | undefined>>;

export type Quantities = Record<UsageQuantity, number>;

export interface InvoiceLine {
  key: InvoiceKey;
  windowStartMs: number;
  windowEndMs: number;
  quantities: Quantities;
}

/** Invoice lines by `lineId`. */
export type InvoiceTotals = Map<string, InvoiceLine>;

const zero = (): Quantities => Object.fromEntries(USAGE_QUANTITIES.map((q) => [q, 0])) as Quantities;
const keyId = (key: InvoiceKey) => INVOICE_DIMENSIONS.map((d) => key[d]).join('\u0000');
const lineId = (key: InvoiceKey, windowStartMs: number, windowEndMs: number) =>
  `${keyId(key)}\u0000${windowStartMs}\u0000${windowEndMs}`;

export function keyOf(row: UsageRow): InvoiceKey {
  return Object.fromEntries(INVOICE_DIMENSIONS.map((d) => [d, String(row[d] ?? '')])) as InvoiceKey;
}

/**
 * Sums rows per invoice line. Correction events carry their window, so they add to it like any event.
 * `rekey` lets a trial whose truth is not unique map the alternatives to one key (see `mergeAttributions`).
 */
export function totalsByInvoiceLine(
  rows: Iterable<UsageRow>,
  rekey: (key: InvoiceKey, row: UsageRow) => InvoiceKey = (key) => key,
): InvoiceTotals {
  const totals: InvoiceTotals = new Map();
  for (const row of rows) {
    const key = rekey(keyOf(row), row);
    const start = Number(row.windowStartMs);
    const end = Number(row.windowEndMs);
    const id = lineId(key, start, end);
    let line = totals.get(id);
    if (!line) totals.set(id, (line = { key, windowStartMs: start, windowEndMs: end, quantities: zero() }));
    for (const quantity of USAGE_QUANTITIES) line.quantities[quantity] += Number(row[quantity] ?? 0);
  }
  return totals;
}

/**
 * docs/DESIGN.md §6: times are integer milliseconds and compare exactly; products of fractions and bytes compare
 * to 1e-9 relative. Every quantity here is a double built from such products, so 1e-9 relative (with an
 * absolute floor for zero) is the bound; an exact time total passes it trivially.
 */
export function agrees(expected: number, actual: number): boolean {
  const scale = Math.max(Math.abs(expected), Math.abs(actual));
  return Math.abs(expected - actual) <= Math.max(1e-9 * scale, 1e-6);
}

/** One (invoice line, quantity) on which the sources disagree. */
export interface LineDifference {
  key: InvoiceKey;
  windowStartMs: number;
  windowEndMs: number;
  quantity: UsageQuantity;
  values: Record<string, number>;
}

/** Per (invoice key, quantity), summed over windows; `differingWindows` counts its lines that differ. */
export interface KeySummary {
  key: InvoiceKey;
  quantity: UsageQuantity;
  values: Record<string, number>;
  differingWindows: number;
}

export interface Comparison {
  sources: string[];
  summary: KeySummary[];
  differences: LineDifference[];
  /** False on any difference, and when the reference (first source) has no usage at all. */
  ok: boolean;
}

/**
 * Compares every source with the first (the ground truth) per invoice line and quantity; a source missing a
 * line counts as zeros there.
 */
export function compareInvoiceLines(sources: Record<string, InvoiceTotals>): Comparison {
  const names = Object.keys(sources);
  const lines = new Map<string, InvoiceLine>();
  for (const name of names) for (const [id, line] of sources[name]!) if (!lines.has(id)) lines.set(id, line);
  const ids = [...lines.keys()].sort((a, b) => {
    const x = lines.get(a)!;
    const y = lines.get(b)!;
    return keyId(x.key).localeCompare(keyId(y.key)) || x.windowStartMs - y.windowStartMs;
  });
  const summaries = new Map<string, KeySummary>();
  const differences: LineDifference[] = [];
  for (const id of ids) {
    const { key, windowStartMs, windowEndMs } = lines.get(id)!;
    for (const quantity of USAGE_QUANTITIES) {
      const values = Object.fromEntries(
        names.map((name) => [name, sources[name]!.get(id)?.quantities[quantity] ?? 0]),
      );
      const reference = values[names[0]!]!;
      const ok = names.every((name) => agrees(reference, values[name]!));
      const summaryId = `${keyId(key)}\u0000${quantity}`;
      let summary = summaries.get(summaryId);
      if (!summary) {
        summary = {
          key,
          quantity,
          values: Object.fromEntries(names.map((n) => [n, 0])),
          differingWindows: 0,
        };
        summaries.set(summaryId, summary);
      }
      for (const name of names) summary.values[name]! += values[name]!;
      if (!ok) {
        summary.differingWindows += 1;
        differences.push({ key, windowStartMs, windowEndMs, quantity, values });
      }
    }
  }
  // A quantity that is zero everywhere for a key (e.g. GPU-seconds of a CPU-only pod) says nothing.
  const summary = [...summaries.values()].filter(
    (row) => row.differingWindows > 0 || Object.values(row.values).some((value) => value !== 0),
  );
  const referenceHasUsage = [...(sources[names[0]!]?.values() ?? [])].some((line) =>
    Object.values(line.quantities).some((value) => value !== 0),
  );
  return { sources: names, summary, differences, ok: differences.length === 0 && referenceHasUsage };
}

/**
 * The attributions a sample may legitimately carry while the truth is not unique (a customer map rolling
 * out, a pod relabelled): windows overlapping [fromMs, toMs) may bill it to any one of `alternatives`.
 */
export interface AmbiguousAttribution {
  fromMs: number;
  toMs: number;
  alternatives: Array<Pick<InvoiceKey, 'subject' | 'project' | 'department'>>;
}

const overlaps = (a: AmbiguousAttribution, row: { windowStartMs: number; windowEndMs: number }) =>
  row.windowStartMs < a.toMs && row.windowEndMs > a.fromMs;
const isAlternative = (a: AmbiguousAttribution, key: InvoiceKey) =>
  a.alternatives.some(
    (alt) => alt.subject === key.subject && alt.project === key.project && alt.department === key.department,
  );

/**
 * A `rekey` for `totalsByInvoiceLine`: in the ambiguous windows, every alternative attribution becomes one
 * merged key, so the comparison there is per (workload type, GPU type, window) summed over the alternatives —
 * each GPU-second billed exactly once, to one of them. Keys outside the alternatives stay as they are (and
 * differ from the truth, which has none); everything outside the ambiguous windows compares per full key.
 */
export function mergeAttributions(ambiguity: AmbiguousAttribution) {
  const merged = (d: 'subject' | 'project' | 'department') =>
    [...new Set(ambiguity.alternatives.map((alt) => alt[d]))].join(' | ');
  return (key: InvoiceKey, row: UsageRow): InvoiceKey =>
    overlaps(ambiguity, row) && isAlternative(ambiguity, key)
      ? { ...key, subject: merged('subject'), project: merged('project'), department: merged('department') }
      : key;
}

/**
 * Lines (of totals summed without `mergeAttributions`) billed to an affected project under an attribution
 * that is none of the alternatives, e.g. the old project with the new customer: wrong whichever configuration
 * a replica had. The merged comparison reports such a line too; this names it for what it is.
 */
export function foreignAttributions(totals: InvoiceTotals, ambiguity: AmbiguousAttribution): InvoiceLine[] {
  const projects = new Set(ambiguity.alternatives.map((alt) => alt.project));
  return [...totals.values()].filter(
    (line) =>
      projects.has(line.key.project) &&
      !isAlternative(ambiguity, line.key) &&
      Object.values(line.quantities).some((value) => value !== 0),
  );
}

/**
 * The truth across a change at `atMs`: windows that start before it from `before`, the others from `after`.
 * Exact outside the ambiguous windows when `atMs` lies in them; inside, the merged keys make it exact too.
 */
export function truthAcross<R extends { windowStartMs: number }>(before: R[], after: R[], atMs: number): R[] {
  return [
    ...before.filter((row) => row.windowStartMs < atMs),
    ...after.filter((row) => row.windowStartMs >= atMs),
  ];
}

function formatNumber(value: number): string {
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value);
  return value.toPrecision(12);
}

function table(header: string[], body: string[][]): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...body.map((line) => line[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

const keyCells = (key: InvoiceKey) => INVOICE_DIMENSIONS.map((d) => key[d] || '-');
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/**
 * The per-key summary table, then the differing (key, window, quantity) lines, at most `maxDifferences` of
 * them and a count of the rest.
 */
export function renderComparison(comparison: Comparison, maxDifferences = 40): string {
  if (comparison.summary.length === 0) return '(no usage)';
  const names = comparison.sources;
  const summary = table(
    [...INVOICE_DIMENSIONS, 'quantity', ...names, 'windows'],
    comparison.summary.map((row) => [
      ...keyCells(row.key),
      row.quantity,
      ...names.map((name) => formatNumber(row.values[name]!)),
      row.differingWindows === 0 ? 'ok' : `DIFF in ${row.differingWindows}`,
    ]),
  );
  const { differences } = comparison;
  if (differences.length === 0) return summary;
  const shown = differences.slice(0, maxDifferences);
  const rest = differences.length - shown.length;
  return [
    summary,
    '',
    `differing lines (${differences.length}):`,
    table(
      [...INVOICE_DIMENSIONS, 'window', 'quantity', ...names],
      shown.map((d) => [
        ...keyCells(d.key),
        `${iso(d.windowStartMs)}+${(d.windowEndMs - d.windowStartMs) / 1000}s`,
        d.quantity,
        ...names.map((name) => formatNumber(d.values[name]!)),
      ]),
    ),
    ...(rest > 0 ? [`... and ${rest} more differing lines`] : []),
  ].join('\n');
}
