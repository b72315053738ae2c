import { readFileSync } from 'node:fs';
import { avroType, type PodAllocationSample } from '@gpu-meter/kit/contracts';
import { podSampleId } from '@gpu-meter/kit/runai';
import {
  expectedSamples,
  parseScenario,
  startSimulator,
  type Scenario,
  type Simulator,
} from '@gpu-meter/simulator';
import { onTestFinished } from 'vitest';
import { createTopics, readTopic, stackEnv, testAdmin, uniqueName } from '../../../test/support/kafka.js';
import { startService, type ServiceProcess } from '../../../test/support/processes.js';

export const INTERVAL_MS = 1_000;

/**
 * scenario.json asks for timestampPrecision "ms", which no real API server stores: with the tests' 1 s
 * sampling interval, whole-second pod times would put every start and end on a grid point, and the spans
 * clipped mid-interval (9437, 10500, 11250 ms) would go untested. In production (15 s intervals)
 * whole-second edges fall mid-interval anyway; real-apiserver.int.test.ts covers whole seconds.
 */
export function loadTestScenario(): Scenario {
  return parseScenario(JSON.parse(readFileSync(new URL('./scenario.json', import.meta.url), 'utf8')));
}

/** Plays the scenario in real time from the next grid point a few seconds ahead (time for collectors to boot). */
export async function playScenario(
  scenario: Scenario,
  options: { leadMs?: number; goneMode?: 'event' | 'http' } = {},
): Promise<Simulator> {
  const startMs = Math.ceil((Date.now() + (options.leadMs ?? 4_000)) / INTERVAL_MS) * INTERVAL_MS;
  const sim = await startSimulator({
    scenario,
    startMs,
    clock: 'real',
    bookmarkIntervalMs: 1_000,
    goneMode: options.goneMode ?? 'event',
  });
  onTestFinished(() => sim.close());
  return sim;
}

export async function outputTopic(prefix: string): Promise<string> {
  const topic = uniqueName(prefix);
  await createTopics(await testAdmin(), [topic], 3);
  return topic;
}

/** The collectors' CLUSTER_ID: the simulator's pods carry their own clusterId annotation, which must not win. */
export const COLLECTOR_CLUSTER_ID = 'configured-cluster';

export function startCollector(
  sim: Simulator,
  topic: string,
  extra: Record<string, string> = {},
): ServiceProcess {
  return startCollectorOn({ K8S_API_URL: sim.k8sUrl }, topic, extra);
}

/** A collector on any Kubernetes API: `kubernetes` is K8S_API_URL (the simulator) or KUBECONFIG (a real one). */
export function startCollectorOn(
  kubernetes: { K8S_API_URL: string } | { KUBECONFIG: string },
  topic: string,
  extra: Record<string, string> = {},
): ServiceProcess {
  const stack = stackEnv();
  return startService('runai-collector', {
    KAFKA_BROKERS: stack.KAFKA_BROKERS!,
    SCHEMA_REGISTRY_URL: stack.SCHEMA_REGISTRY_URL!,
    ...kubernetes,
    CLUSTER_ID: COLLECTOR_CLUSTER_ID,
    SAMPLING_INTERVAL_MS: String(INTERVAL_MS),
    SAMPLE_DELAY_MS: '250',
    BACKFILL_MAX_MS: '60000',
    POD_ALLOCATIONS_TOPIC: topic,
    PROJECT_DEPARTMENTS: JSON.stringify({ 'team-a': 'research', 'team-b': 'product' }),
    PROJECT_CUSTOMERS: JSON.stringify({ 'team-a': 'acme' }),
    KAFKAJS_NO_PARTITIONER_WARNING: '1',
    OPS_PORT: '0',
    LOG_LEVEL: process.env.COLLECTOR_LOG_LEVEL ?? 'info',
    OPS_HOST: '127.0.0.1',
    ...extra,
  });
}

export async function waitUntil(epochMs: number): Promise<void> {
  const wait = epochMs - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

export interface Received {
  key: string;
  value: PodAllocationSample;
  bytes: Buffer;
}

export async function readSamples(topic: string): Promise<Received[]> {
  const type = avroType('podAllocationSample');
  const records = await readTopic(topic, { idleMs: 2_500, timeoutMs: 30_000 });
  return records.map(({ message }) => ({
    key: message.key!.toString(),
    value: type.fromBuffer(message.value!.subarray(5)) as PodAllocationSample,
    bytes: message.value!,
  }));
}

/** What the collector must publish for the scenario, in the record's shape, ordered by id. */
export function expectedRecords(scenario: Scenario, sim: Simulator): PodAllocationSample[] {
  const truth = expectedSamples(scenario, { samplingIntervalMs: INTERVAL_MS, startMs: sim.startMs });
  return truth.allocation
    .map((s) => ({
      id: podSampleId(COLLECTOR_CLUSTER_ID, s.podUid, s.observedAtMs),
      clusterId: COLLECTOR_CLUSTER_ID,
      observedAtMs: s.observedAtMs,
      spanStartMs: s.spanStartMs,
      spanEndMs: s.spanEndMs,
      podUid: s.podUid,
      podName: s.podName,
      namespace: s.namespace,
      nodeName: s.nodeName,
      subject: s.subject,
      project: s.project,
      department: s.department,
      queue: s.queue,
      workloadType: s.workloadType,
      user: s.user,
      workloadId: s.workloadId,
      gpuType: s.gpuType,
      migProfile: s.migProfile,
      gpus: s.gpus,
      gpuMemoryBytes: s.gpuMemoryBytes,
      cpuCores: s.cpuCores,
      memoryBytes: s.memoryBytes,
    }))
    .sort(byId);
}

/** Distinct samples up to the billed end, ordered by id; fails if one id was published with two values. */
export function distinctUpTo(received: Received[], lastT: number): PodAllocationSample[] {
  const byKey = new Map<string, Received>();
  for (const record of received) {
    if (record.value.observedAtMs > lastT) continue;
    const seen = byKey.get(record.value.id);
    if (seen && !seen.bytes.equals(record.bytes)) {
      throw new Error(`id ${record.value.id} published with different values`);
    }
    if (record.key !== `${record.value.clusterId}/${record.value.podUid}`)
      throw new Error(`record keyed ${record.key}, not by its cluster and pod uid`);
    byKey.set(record.value.id, record);
  }
  return [...byKey.values()].map((r) => r.value).sort(byId);
}

function byId(a: { id: string }, b: { id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export async function metricValue(service: ServiceProcess, name: string): Promise<number> {
  const line = await service.waitForLog(/Server listening at http:\/\/127\.0\.0\.1:\d+/);
  const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(line)![1]!;
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** pod@offset(span) labels, for a readable first comparison before the exact one. */
export function labels(samples: PodAllocationSample[], startMs: number): string[] {
  return samples
    .map(
      (s) => `${s.podName}@${s.observedAtMs - startMs}[${s.spanStartMs - startMs},${s.spanEndMs - startMs})`,
    )
    .sort();
}
