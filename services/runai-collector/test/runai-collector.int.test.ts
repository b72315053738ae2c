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
    // Restarted at once: its start-up (seconds) is the outage, across several grid points. nb-1 ends at
    // 8 s and is deleted at 11.5 s, so the restarted collector must list it before then to backfill it;
    // that leaves 7 s for the start-up. Restarting at 7 s, start-ups of 3.5 s and more on the loaded CI
    // machine missed nb-1; restarting at 5 s with deletion at 10.5 s, a CI run beside other integration
    // files failed too (the read loop then hid why until it had a deadline).
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
    // record is there, so the comparison below judges what it sent, not when. A deadline, not a count of
    // reads: each read takes seconds on a loaded machine, and ten of them once ran past the test's timeout,
    // hiding which samples were missing.
    const readDeadline = Date.now() + 30_000;
    let received = await readSamples(topic);
    while (distinctUpTo(received, lastT).length < expected.length && Date.now() < readDeadline) {
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      received = await readSamples(topic);
    }
    expect(readyAt, 'restarted collector ready after nb-1 was deleted (11.5 s)').toBeLessThan(11_500);
    expect(labels(distinctUpTo(received, lastT), sim.startMs)).toEqual(labels(expected, sim.startMs));
    expect(distinctUpTo(received, lastT)).toEqual(expected);
    expect(await metricValue(second, 'gpumeter_allocation_samples_backfilled_total')).toBeGreaterThan(0);
    expect(await metricValue(second, 'gpumeter_kubernetes_lists_total{')).toBeGreaterThan(listsBefore);
  });
});
