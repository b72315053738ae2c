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
      // Exactness, not latency, is what this asserts. On a loaded machine (CI runs it beside two busy
      // loops) the single test broker has stalled for up to a minute (KRaft controller events of 5–16 s,
      // every group member evicted); the aggregator rightly counts no quiet time while it cannot reach
      // Kafka, so the last windows close that much later. 180 s covers such a stall plus IDLE_ADVANCE_MS;
      // a lost or doubled GPU-second still fails, since the totals never come to agree.
      timeoutMs: 180_000,
      stackEnv: stackEnv(),
      log: (line) => lines.push(line),
    });
    expect(table).toMatch(/gpuAllocationSeconds/);
    expect(ok, `${table}\n${lines.join('\n')}`).toBe(true);
  }, 360_000);
});
