import type { Scenario } from './scenario.js';
import {
  computeTruth,
  QUANTITIES,
  type Dimensions,
  type Piece,
  type Quantities,
  type Quantity,
  type TruthOptions,
} from './truth-samples.js';

export * from './truth-samples.js';

/**
 * Ground truth, part 2: totals per (subject, project, department, workload type, GPU type), overall and per
 * epoch-aligned window, summed exactly from the expected samples' pieces. Pure.
 */
export type TotalsRow = Dimensions & Quantities & { sampleCount: number };
export type WindowRow = TotalsRow & { windowStartMs: number; windowEndMs: number };

export interface ExpectedTotals {
  startMs: number;
  billedFromMs: number;
  billedToMs: number;
  samplingIntervalMs: number;
  windowMs?: number;
  totals: TotalsRow[];
  windows?: WindowRow[];
}

const zeroQuantities = (): Quantities => Object.fromEntries(QUANTITIES.map((q) => [q, 0])) as Quantities;
const keyOf = (d: Dimensions) =>
  [d.clusterId, d.subject, d.project, d.department, d.workloadType, d.gpuType].join('\u0000');

class Accumulator<R extends TotalsRow> {
  private readonly rows = new Map<string, { row: R; samples: Set<number> }>();
  add(key: string, make: () => R, piece: Piece, ms: number): void {
    let entry = this.rows.get(key);
    if (!entry) this.rows.set(key, (entry = { row: make(), samples: new Set() }));
    entry.samples.add(piece.sample);
    for (const [q, perSecond] of Object.entries(piece.perSecond) as [Quantity, number][])
      entry.row[q] += (perSecond * ms) / 1000;
  }
  result(): R[] {
    return [...this.rows.values()].map(({ row, samples }) => ({ ...row, sampleCount: samples.size }));
  }
}

export function expectedTotals(
  scenario: Scenario,
  options: TruthOptions & { windowMs?: number },
): ExpectedTotals {
  const { samples, pieces } = computeTruth(scenario, options);
  const totals = new Accumulator<TotalsRow>();
  for (const piece of pieces) {
    totals.add(
      keyOf(piece.dims),
      () => ({ ...piece.dims, ...zeroQuantities(), sampleCount: 0 }),
      piece,
      piece.toMs - piece.fromMs,
    );
  }
  const result: ExpectedTotals = {
    startMs: samples.startMs,
    billedFromMs: samples.billedFromMs,
    billedToMs: samples.billedToMs,
    samplingIntervalMs: samples.samplingIntervalMs,
    totals: totals.result(),
  };
  const w = options.windowMs;
  if (w === undefined) return result;
  if (!Number.isInteger(w) || w <= 0) throw new Error('windowMs must be a positive integer');
  const windows = new Accumulator<WindowRow>();
  for (const piece of pieces) {
    for (let ws = Math.floor(piece.fromMs / w) * w; ws < piece.toMs; ws += w) {
      const overlap = Math.min(piece.toMs, ws + w) - Math.max(piece.fromMs, ws);
      if (overlap <= 0) continue;
      const make = () => ({
        ...piece.dims,
        windowStartMs: ws,
        windowEndMs: ws + w,
        ...zeroQuantities(),
        sampleCount: 0,
      });
      windows.add(`${ws}\u0000${keyOf(piece.dims)}`, make, piece, overlap);
    }
  }
  result.windowMs = w;
  result.windows = windows.result().sort((a, b) => a.windowStartMs - b.windowStartMs);
  return result;
}
