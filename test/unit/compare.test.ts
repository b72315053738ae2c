import { describe, expect, it } from 'vitest';
import {
  compareInvoiceLines,
  foreignAttributions,
  mergeAttributions,
  renderComparison,
  totalsByInvoiceLine,
  truthAcross,
  type AmbiguousAttribution,
  type UsageRow,
} from '../pipeline/compare.js';

const W = 10_000;
const line = (over: Partial<UsageRow> = {}): UsageRow => ({
  subject: 'acme',
  project: 'team-a',
  department: 'research',
  workloadType: 'Training',
  gpuType: 'NVIDIA-A100-SXM4-80GB',
  windowStartMs: 0,
  windowEndMs: W,
  gpuAllocationSeconds: 20,
  cpuCoreSeconds: 160,
  ...over,
});

function compare(truth: UsageRow[], topic: UsageRow[], rekey?: Parameters<typeof totalsByInvoiceLine>[1]) {
  return compareInvoiceLines({
    truth: totalsByInvoiceLine(truth, rekey),
    topic: totalsByInvoiceLine(topic, rekey),
  });
}

describe('invoice-line comparison (docs/DESIGN.md §6.5)', () => {
  it('agrees when every line matches, whatever the row order and splitting', () => {
    const truth = [line(), line({ windowStartMs: W, windowEndMs: 2 * W })];
    const topic = [
      line({ windowStartMs: W, windowEndMs: 2 * W }),
      line({ gpuAllocationSeconds: 5, cpuCoreSeconds: 40 }),
      line({ gpuAllocationSeconds: 15, cpuCoreSeconds: 120 }),
    ];
    const result = compare(truth, topic);
    expect(result.ok).toBe(true);
    expect(result.differences).toEqual([]);
  });

  // The per-subject comparison this replaced reported 0 differences in each of these cases.
  it.each([
    ['GPU type', { gpuType: 'NVIDIA-H100-80GB-HBM3' }],
    ['workload type', { workloadType: 'Inference' }],
    ['window', { windowStartMs: W, windowEndMs: 2 * W }],
    ['project', { project: 'team-c' }],
    ['department', { department: 'product' }],
  ])('reports usage moved to the wrong %s as a difference on both lines', (_, moved) => {
    const result = compare([line()], [line(moved)]);
    expect(result.ok).toBe(false);
    const differing = result.differences.filter((d) => d.quantity === 'gpuAllocationSeconds');
    expect(differing.map((d) => d.values)).toEqual(
      expect.arrayContaining([
        { truth: 20, topic: 0 },
        { truth: 0, topic: 20 },
      ]),
    );
    expect(result.summary.filter((row) => row.differingWindows > 0).length).toBeGreaterThanOrEqual(1);
  });

  it('adds a correction event to its window', () => {
    const topic = [
      line({ gpuAllocationSeconds: 14, cpuCoreSeconds: 112 }),
      { ...line({ gpuAllocationSeconds: 6, cpuCoreSeconds: 48 }), correction: true },
    ];
    expect(compare([line()], topic).ok).toBe(true);
    const wrongWindow = { ...topic[1]!, windowStartMs: W, windowEndMs: 2 * W };
    expect(compare([line()], [topic[0]!, wrongWindow]).ok).toBe(false);
  });

  it('compares within the floating-point bound and fails when the reference has no usage', () => {
    expect(compare([line()], [line({ gpuAllocationSeconds: 20 * (1 + 1e-12) })]).ok).toBe(true);
    expect(compare([line()], [line({ gpuAllocationSeconds: 20.001 })]).ok).toBe(false);
    expect(compare([], []).ok).toBe(false);
  });

  it('renders the per-key summary and caps the differing lines with a count of the rest', () => {
    const truth = Array.from({ length: 6 }, (_, k) =>
      line({ windowStartMs: k * W, windowEndMs: (k + 1) * W }),
    );
    const text = renderComparison(compare(truth, []), 3);
    expect(text).toMatch(
      /subject\s+project\s+department\s+workloadType\s+gpuType\s+quantity\s+truth\s+topic/,
    );
    expect(text).toMatch(
      /acme\s+team-a\s+research\s+Training\s+NVIDIA-A100-SXM4-80GB\s+gpuAllocationSeconds\s+120\s+0\s+DIFF in 6/,
    );
    expect(text).toContain('differing lines (12):');
    expect(text).toContain('... and 9 more differing lines');
  });
});

describe('ambiguous attribution (config rollout, relabel)', () => {
  const ambiguity: AmbiguousAttribution = {
    fromMs: W,
    toMs: 3 * W,
    alternatives: [
      { subject: 'acme', project: 'team-a', department: 'research' },
      { subject: 'globex', project: 'team-a', department: 'research' },
    ],
  };
  const inWindow = (k: number, over: Partial<UsageRow> = {}) =>
    line({ windowStartMs: k * W, windowEndMs: (k + 1) * W, ...over });

  it('accepts each ambiguous window billed once to either alternative, and compares the rest exactly', () => {
    const truth = [inWindow(0), inWindow(1), inWindow(2), inWindow(3, { subject: 'globex' })];
    const topic = [
      inWindow(0),
      inWindow(1, { subject: 'globex' }),
      inWindow(2, { gpuAllocationSeconds: 8, cpuCoreSeconds: 60 }),
      inWindow(2, { subject: 'globex', gpuAllocationSeconds: 12, cpuCoreSeconds: 100 }),
      inWindow(3, { subject: 'globex' }),
    ];
    expect(compare(truth, topic, mergeAttributions(ambiguity)).ok).toBe(true);
    // Outside the ambiguous windows the subject is certain.
    const late = [...topic.slice(0, 4), inWindow(3)];
    expect(compare(truth, late, mergeAttributions(ambiguity)).ok).toBe(false);
  });

  it('reports a GPU-second billed to both alternatives, or to neither', () => {
    const truth = [inWindow(1)];
    const twice = [inWindow(1), inWindow(1, { subject: 'globex' })];
    expect(compare(truth, twice, mergeAttributions(ambiguity)).ok).toBe(false);
    const neither = [inWindow(1, { subject: 'initech' })];
    expect(compare(truth, neither, mergeAttributions(ambiguity)).ok).toBe(false);
    expect(foreignAttributions(totalsByInvoiceLine(neither), ambiguity).map((l) => l.key.subject)).toEqual([
      'initech',
    ]);
    expect(foreignAttributions(totalsByInvoiceLine(twice), ambiguity)).toEqual([]);
    // Other projects of the old or new customer are no concern of this check.
    expect(foreignAttributions(totalsByInvoiceLine([inWindow(1, { project: 'team-c' })]), ambiguity)).toEqual(
      [],
    );
  });

  it('still tells workload and GPU types apart in the ambiguous windows', () => {
    const topic = [inWindow(1, { subject: 'globex', gpuType: 'NVIDIA-H100-80GB-HBM3' })];
    expect(compare([inWindow(1)], topic, mergeAttributions(ambiguity)).ok).toBe(false);
  });

  it('takes the truth before a change from one run and after it from the other', () => {
    const before = [inWindow(0), inWindow(1), inWindow(2)];
    const after = [
      inWindow(0, { subject: 'globex' }),
      inWindow(1, { subject: 'globex' }),
      inWindow(2, { subject: 'globex' }),
    ];
    expect(truthAcross(before, after, W).map((r) => [r.windowStartMs, r.subject])).toEqual([
      [0, 'acme'],
      [W, 'globex'],
      [2 * W, 'globex'],
    ]);
  });
});
