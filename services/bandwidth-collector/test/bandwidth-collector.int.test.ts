import { readFileSync } from 'node:fs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { avroType, type BandwidthSample } from '@gpu-meter/kit/contracts';
import { bandwidthSampleId } from '@gpu-meter/kit/runai';
import { expectedSamples, parseScenario, startSimulator } from '@gpu-meter/simulator';
import { createTopics, readTopic, stackEnv, testAdmin, uniqueName } from '../../../test/support/kafka.js';
import { startService } from '../../../test/support/processes.js';
import { postponeUntilReady } from '../../../test/support/scenario-start.js';

const INTERVAL_MS = 1_000;

async function waitUntil(epochMs: number): Promise<void> {
  const wait = epochMs - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

/**
 * simulator (fake Kubernetes API + fake DCGM exporter, discovered through its exporter pods) ->
 * bandwidth-collector -> real Kafka, compared with the ground truth sample by sample: whole, MIG and
 * free devices, a pod ending mid-interval, and two fractional sharers splitting one GPU's NVLink/PCIe
 * traffic through the reservation-pod join.
 */
describe('bandwidth-collector against the simulator', () => {
  it('publishes exactly the expected per-pod shares of each device', async () => {
    // scenario.json's timestampPrecision "ms" (no real API stores that): at this 1 s interval whole-second
    // pod times would all lie on grid points, leaving the mid-interval end (9437 ms) and its split untested.
    const scenario = parseScenario(
      JSON.parse(readFileSync(new URL('./scenario.json', import.meta.url), 'utf8')),
    );
    // Gauges are not backfilled, so the collector must tick before the first grid point: the start is
    // postponed while it is still starting (tsx start-up + registry registration take long under load).
    const plannedStartMs = Math.ceil((Date.now() + 6_000) / INTERVAL_MS) * INTERVAL_MS;
    const sim = await startSimulator({ scenario, startMs: plannedStartMs, clock: 'real' });
    onTestFinished(() => sim.close());
    const topic = uniqueName('bandwidth');
    await createTopics(await testAdmin(), [topic], 3);
    const stack = stackEnv();
    const collector = startService('bandwidth-collector', {
      KAFKA_BROKERS: stack.KAFKA_BROKERS!,
      SCHEMA_REGISTRY_URL: stack.SCHEMA_REGISTRY_URL!,
      K8S_API_URL: sim.k8sUrl,
      CLUSTER_ID: scenario.clusterId,
      SAMPLING_INTERVAL_MS: String(INTERVAL_MS),
      SAMPLE_DELAY_MS: '250',
      SCRAPE_TIMEOUT_MS: '500',
      BANDWIDTH_SAMPLES_TOPIC: topic,
      PROJECT_DEPARTMENTS: JSON.stringify(scenario.departments),
      PROJECT_CUSTOMERS: JSON.stringify(scenario.customers),
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
      OPS_PORT: '0',
      OPS_HOST: '127.0.0.1',
    });
    const startMs = await postponeUntilReady(sim, collector.waitForLog(/collector ready/), INTERVAL_MS);

    const lastT = startMs + scenario.durationMs;
    await waitUntil(lastT + INTERVAL_MS);
    const type = avroType('bandwidthSample');
    const records = await readTopic(topic, { idleMs: 2_500 });
    const received = records
      .map(({ message }) => ({
        key: message.key!.toString(),
        value: type.fromBuffer(message.value!.subarray(5)) as BandwidthSample,
      }))
      .filter(({ value }) => value.observedAtMs > startMs && value.observedAtMs <= lastT);
    // Keyed by the physical GPU, whoever held it; one process, one observer.
    for (const { key, value } of received) expect(key).toBe(`${value.clusterId}/${value.gpuUuid}`);
    const observers = new Set(received.map(({ value }) => value.observer));
    expect(observers.size).toBe(1);
    expect([...observers][0]).toMatch(/\S{8}/);
    const actual = received.map((r) => r.value);
    expect(new Set(actual.map((s) => s.id)).size).toBe(actual.length);

    const truth = expectedSamples(scenario, { samplingIntervalMs: INTERVAL_MS, startMs });
    expect(truth.bandwidth.length).toBeGreaterThan(50);
    const label = (s: {
      podName: string;
      gpuIndex: number;
      migInstanceId: string | null;
      observedAtMs: number;
      spanStartMs: number;
      spanEndMs: number;
      subject: string;
    }) =>
      `${s.subject}:${s.podName}@gpu${s.gpuIndex}${s.migInstanceId ? `/${s.migInstanceId}` : ''}@${s.observedAtMs - startMs}[${s.spanStartMs - startMs},${s.spanEndMs - startMs})`;
    expect(actual.map(label).sort()).toEqual(truth.bandwidth.map(label).sort());

    const byId = new Map(actual.map((s) => [s.id, s]));
    for (const want of truth.bandwidth) {
      const got = byId.get(
        bandwidthSampleId(
          want.clusterId,
          want.migInstanceId ? `${want.gpuUuid}/${want.migInstanceId}` : want.gpuUuid,
          want.podUid || undefined,
          want.observedAtMs,
        ),
      );
      expect(got, label(want)).toBeDefined();
      expect({ ...got!, id: '' }).toMatchObject({
        clusterId: want.clusterId,
        gpuUuid: want.gpuUuid,
        gpuIndex: want.gpuIndex,
        migInstanceId: want.migInstanceId,
        migProfile: want.migProfile,
        hostname: want.hostname,
        gpuType: want.gpuType,
        podUid: want.podUid,
        namespace: want.namespace,
        project: want.project,
        department: want.department,
        workloadType: want.workloadType,
      });
      const seconds = (got!.spanEndMs - got!.spanStartMs) / 1000;
      const close = (actualValue: number, expected: number) =>
        expect(Math.abs(actualValue - expected)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(expected)));
      close(got!.nvlinkTxBytesPerSecond * seconds, want.nvlinkTxBytes);
      close(got!.nvlinkRxBytesPerSecond * seconds, want.nvlinkRxBytes);
      close(got!.pcieTxBytesPerSecond * seconds, want.pcieTxBytes);
      close(got!.pcieRxBytesPerSecond * seconds, want.pcieRxBytes);
      close(got!.fbUsedBytes * seconds, want.gpuMemoryUsedByteSeconds);
      close(got!.share, want.share);
    }
    // The shared GPU: at each grid point the sharers' shares sum to one.
    const shared = actual.filter((s) => s.gpuIndex === 2 && s.podUid !== '');
    const perT = new Map<number, number>();
    for (const s of shared) perT.set(s.observedAtMs, (perT.get(s.observedAtMs) ?? 0) + s.share);
    expect([...perT.values()].every((sum) => Math.abs(sum - 1) < 1e-12)).toBe(true);
    expect(shared.some((s) => s.share > 0 && s.share < 1)).toBe(true);
  });
});
