import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/stack-env.js';
import { stackEnv } from '../support/kafka.js';
import { verifyScenario } from '../pipeline/verify.js';

/**
 * The whole pipeline end to end (docs/DESIGN.md §6 invariants 1 and 4): simulator → collectors → aggregator →
 * ClickHouse sink and OpenMeter forwarder, on real Kafka, registry and ClickHouse. Ground truth, usage-topic,
 * ClickHouse and OpenMeter totals must agree per subject and quantity.
 */
describe('verify: the pipeline bills a scenario exactly as its ground truth', () => {
  it('short-mixed: whole, fractional and CPU-only pods, bandwidth, a pod ending between grid points', async () => {
    const lines: string[] = [];
    const { ok, table } = await verifyScenario({
      scenarioFile: `${REPO_ROOT}test/scenarios/short-mixed.json`,
      windowMs: 10_000,
      intervalMs: 2_000,
      timeoutMs: 60_000,
      stackEnv: stackEnv(),
      log: (line) => lines.push(line),
    });
    expect(table).toMatch(/gpuAllocationSeconds/);
    expect(ok, `${table}\n${lines.join('\n')}`).toBe(true);
  }, 240_000);
});
