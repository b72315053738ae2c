import { describe, expect, it } from 'vitest';
import {
  INTERVAL_MS,
  distinctUpTo,
  expectedRecords,
  labels,
  loadTestScenario,
  metricValue,
  outputTopic,
  playScenario,
  readSamples,
  startCollector,
  waitUntil,
} from './harness.js';
import { postponeUntilReady } from '../../../test/support/scenario-start.js';

/**
 * simulator -> runai-collector -> real Kafka, compared with the simulator's ground truth sample by sample:
 * whole, fractional and MIG pods, a CPU-only pod, pods ending (and deleted) between grid points.
 */
describe('runai-collector against the simulator', () => {
  it('two replicas publish exactly the expected samples with the same ids, through a 410 Gone relist', async () => {
    const scenario = loadTestScenario();
    const sim = await playScenario(scenario);
    const [topicA, topicB] = await Promise.all([outputTopic('alloc-a'), outputTopic('alloc-b')]);
    const replicaA = startCollector(sim, topicA);
    const replicaB = startCollector(sim, topicB);
    await postponeUntilReady(
      sim,
      Promise.all([replicaA.waitForLog(/collector ready/), replicaB.waitForLog(/collector ready/)]),
      INTERVAL_MS,
    );

    // Mid-scenario, compact the watch history and cut the watches: the re-watch gets 410 Gone and relists.
    await waitUntil(sim.startMs + 5_300);
    const listsBefore = await metricValue(replicaA, 'gpumeter_kubernetes_lists_total{');
    sim.expireWatchHistory();

    const lastT = sim.startMs + scenario.durationMs;
    await waitUntil(lastT + INTERVAL_MS);
    const [a, b] = await Promise.all([readSamples(topicA), readSamples(topicB)]);
    expect(await metricValue(replicaA, 'gpumeter_kubernetes_lists_total{')).toBeGreaterThan(listsBefore);

    const expected = expectedRecords(scenario, sim);
    expect(expected.length).toBeGreaterThan(30);
    expect(labels(distinctUpTo(a, lastT), sim.startMs)).toEqual(labels(expected, sim.startMs));
    expect(distinctUpTo(a, lastT)).toEqual(expected);
    expect(distinctUpTo(b, lastT)).toEqual(expected);
    // Live (not backfilled) samples go out once per replica.
    expect(a.filter((r) => r.value.observedAtMs <= lastT).length).toBe(expected.length);
  });

  it('a collector killed mid-scenario backfills the points it missed after restart: no gap', async () => {
    const scenario = loadTestScenario();
    // This run answers a stale watch with HTTP 410 (the other with a 410 ERROR event).
    const sim = await playScenario(scenario, { goneMode: 'http' });
    const topic = await outputTopic('alloc-restart');
    const first = startCollector(sim, topic);
    await postponeUntilReady(sim, first.waitForLog(/collector ready/), INTERVAL_MS);

    await waitUntil(sim.startMs + 4_500);
    await first.kill('SIGKILL');
    // Down across several grid points (the restart takes a few seconds itself); nb-1 ends at 8 s and is
    // deleted at 10.5 s, so the restarted collector must list it before then to backfill it. Restarting at
    // 5 s leaves 5.5 s for the start-up: at 7 s, start-ups of 3.5 s and more on the loaded CI machine
    // missed nb-1 (its 5-8 s points absent).
    await waitUntil(sim.startMs + 5_000);
    const second = startCollector(sim, topic);
    await second.waitForLog(/collector ready/);
    const readyAt = Date.now() - sim.startMs;
    const listsBefore = await metricValue(second, 'gpumeter_kubernetes_lists_total{');
    await waitUntil(sim.startMs + 9_700);
    sim.expireWatchHistory();

    const lastT = sim.startMs + scenario.durationMs;
    await waitUntil(lastT + INTERVAL_MS);
    const expected = expectedRecords(scenario, sim);
    // A late-ready collector sends its backfill after the last grid point: read again until every expected
    // record is there (30 s at most), so the comparison below judges what it sent, not when.
    let received = await readSamples(topic);
    for (let i = 0; i < 10 && distinctUpTo(received, lastT).length < expected.length; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      received = await readSamples(topic);
    }
    expect(readyAt, 'restarted collector ready after nb-1 was deleted (10.5 s)').toBeLessThan(10_500);
    expect(labels(distinctUpTo(received, lastT), sim.startMs)).toEqual(labels(expected, sim.startMs));
    expect(distinctUpTo(received, lastT)).toEqual(expected);
    expect(await metricValue(second, 'gpumeter_allocation_samples_backfilled_total')).toBeGreaterThan(0);
    expect(await metricValue(second, 'gpumeter_kubernetes_lists_total{')).toBeGreaterThan(listsBefore);
  });
});
