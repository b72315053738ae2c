import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { avroType, type BandwidthSample } from '@gpu-meter/kit/contracts';
import { createTopics, readTopic, stackEnv, testAdmin, uniqueName } from '../../../test/support/kafka.js';
import { startService } from '../../../test/support/processes.js';
import {
  GPU_PRODUCT,
  markRunning,
  realApi,
  runningPod,
  succeed,
  type RealApi,
} from '../../../test/support/real-apiserver.js';

/**
 * bandwidth-collector against the stack's real kube-apiserver (test/support/real-apiserver.ts), through a
 * kubeconfig (TLS + bearer token), with its exporter discovered as a pod of the API and a DCGM page served
 * by the test. A whole-GPU pod, two fractional sharers joined through their reservation pod (one ends
 * mid-interval) and a free GPU: every sample's bytes are computed from the times the API stored.
 */

/** Two seconds: the API stores whole seconds, so an end on an odd second falls inside an interval. */
const INTERVAL_MS = 2_000;
const MIB = 2 ** 20;

interface Device {
  index: number;
  uuid: string;
  /** The pod dcgm-exporter maps the device to (a shared GPU: the reservation pod), if any. */
  pod?: string;
  nvlinkTxBytesPerSecond: number;
  fbUsedMiB: number;
}

/** dcgm-exporter's page for the devices, with its labels (pod mapping on). */
function dcgmPage(devices: readonly Device[], namespace: string, hostname: string): string {
  const lines: string[] = [];
  for (const [metric, value] of [
    ['DCGM_FI_PROF_NVLINK_TX_BYTES', (d: Device) => d.nvlinkTxBytesPerSecond],
    ['DCGM_FI_DEV_FB_USED', (d: Device) => d.fbUsedMiB],
  ] as const) {
    lines.push(`# TYPE ${metric} gauge`);
    for (const d of devices) {
      const labels = [
        `gpu="${d.index}"`,
        `UUID="${d.uuid}"`,
        `device="nvidia${d.index}"`,
        `modelName="${GPU_PRODUCT.replaceAll('-', ' ')}"`,
        `Hostname="${hostname}"`,
        ...(d.pod ? [`container="main"`, `namespace="${namespace}"`, `pod="${d.pod}"`] : []),
      ];
      lines.push(`${metric}{${labels.join(',')}} ${value(d)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

async function serveDcgm(page: string): Promise<number> {
  const server: Server = createServer((request, response) => {
    response.writeHead(request.url === '/metrics' ? 200 : 404, { 'content-type': 'text/plain' });
    response.end(request.url === '/metrics' ? page : '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

/** The exporter as the GPU operator runs it: a Running pod on the node, its metrics port named. */
async function exporterPod(real: RealApi, port: number): Promise<void> {
  const name = 'nvidia-dcgm-exporter';
  await real.api.createNamespacedPod({
    namespace: real.namespace,
    body: {
      metadata: { name, labels: { app: 'nvidia-dcgm-exporter' } },
      spec: {
        nodeName: real.node,
        automountServiceAccountToken: false,
        containers: [
          {
            name: 'main',
            image: 'nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04',
            ports: [{ name: 'metrics', containerPort: port }],
          },
        ],
      },
    },
  });
  await markRunning(real, name, '127.0.0.1');
}

async function waitUntil(epochMs: number): Promise<void> {
  const wait = epochMs - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

/** The next odd whole second plus 300 ms: an end stored there lies inside a 2 s interval. */
function nextOddSecond(): number {
  let second = Math.ceil(Date.now() / 1000);
  if (second % 2 === 0) second += 1;
  return second * 1000 + 300;
}

interface Holding {
  startMs: number;
  endMs: number | null;
  fraction: number;
}

/**
 * Byte-seconds one sharer of a GPU held in [t - INTERVAL_MS, t): at each moment its fraction over the
 * sum of the running sharers' fractions (docs/DESIGN.md), written out here apart from the collector's code.
 */
function sharedBytes(own: Holding, all: readonly Holding[], t: number, rate: number): number {
  const from = t - INTERVAL_MS;
  const cuts = [...new Set([from, t, ...all.flatMap((h) => [h.startMs, h.endMs ?? t])])]
    .filter((x) => x >= from && x <= t)
    .sort((a, b) => a - b);
  let bytes = 0;
  for (let k = 0; k + 1 < cuts.length; k += 1) {
    const [a, b] = [cuts[k]!, cuts[k + 1]!];
    const runs = (h: Holding) => h.startMs <= a && (h.endMs === null || a < h.endMs);
    if (!runs(own)) continue;
    const total = all.filter(runs).reduce((sum, h) => sum + h.fraction, 0);
    bytes += ((rate * own.fraction) / total) * ((b - a) / 1000);
  }
  return bytes;
}

describe('bandwidth-collector against a real kube-apiserver (TLS, bearer token)', () => {
  it('splits each device among the pods the API holds, a shared GPU by fraction to its stored end', async () => {
    const real = await realApi();
    const id = real.namespace.slice(-8);
    const uuid = (index: number) => `GPU-${id}-0000-0000-0000-00000000000${index}`;
    const group = `group-${id}`;
    const devices: Device[] = [
      { index: 0, uuid: uuid(0), pod: 'train', nvlinkTxBytesPerSecond: 9e8, fbUsedMiB: 40_000 },
      { index: 1, uuid: uuid(1), pod: 'reservation', nvlinkTxBytesPerSecond: 6e8, fbUsedMiB: 30_000 },
      { index: 2, uuid: uuid(2), nvlinkTxBytesPerSecond: 3e8, fbUsedMiB: 0 },
    ];
    const port = await serveDcgm(dcgmPage(devices, real.namespace, real.node));
    await exporterPod(real, port);

    const trainStart = await runningPod(real, 'train', { whole: 1 });
    await runningPod(
      real,
      'reservation',
      { whole: 1 },
      {
        labels: { app: 'runai-reservation', 'runai-gpu-group': group },
        annotations: { 'run.ai/reserve_for_gpu_index': uuid(1) },
      },
    );
    const sharer = { labels: { 'runai-gpu-group': group } };
    const half: Holding = {
      startMs: await runningPod(real, 'half', { fraction: 0.5, gpu: 1 }, sharer),
      endMs: null,
      fraction: 0.5,
    };
    const quarter: Holding = {
      startMs: await runningPod(real, 'quarter', { fraction: 0.25, gpu: 1 }, sharer),
      endMs: null,
      fraction: 0.25,
    };
    const uids = new Map<string, string>();
    for (const name of ['train', 'half', 'quarter']) {
      const pod = await real.api.readNamespacedPod({ name, namespace: real.namespace });
      uids.set(name, pod.metadata!.uid!);
    }

    const topic = uniqueName('bandwidth-real');
    await createTopics(await testAdmin(), [topic], 3);
    const stack = stackEnv();
    const collector = startService('bandwidth-collector', {
      KAFKA_BROKERS: stack.KAFKA_BROKERS!,
      SCHEMA_REGISTRY_URL: stack.SCHEMA_REGISTRY_URL!,
      KUBECONFIG: real.kubeconfig,
      CLUSTER_ID: 'real-cluster',
      SAMPLING_INTERVAL_MS: String(INTERVAL_MS),
      SAMPLE_DELAY_MS: '250',
      SCRAPE_TIMEOUT_MS: '1000',
      BANDWIDTH_SAMPLES_TOPIC: topic,
      DCGM_EXPORTER_NAMESPACE: real.namespace,
      PROJECT_DEPARTMENTS: JSON.stringify({ 'team-a': 'research' }),
      PROJECT_CUSTOMERS: JSON.stringify({ 'team-a': 'acme' }),
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
      OPS_PORT: '0',
      OPS_HOST: '127.0.0.1',
    });
    await collector.waitForLog(/collector ready/);
    // Gauges are not backfilled: only grid points after the collector's first scrape are compared.
    const firstT = Math.ceil((Date.now() + INTERVAL_MS) / INTERVAL_MS) * INTERVAL_MS;
    expect(trainStart, 'every pod runs before the first compared interval').toBeLessThan(
      firstT - INTERVAL_MS,
    );
    await waitUntil(firstT + INTERVAL_MS);
    await waitUntil(nextOddSecond());
    quarter.endMs = await succeed(real, 'quarter');
    expect((quarter.endMs / 1000) % 2, 'the stored end lies inside an interval').toBe(1);
    const lastT = Math.ceil(quarter.endMs / INTERVAL_MS) * INTERVAL_MS + 2 * INTERVAL_MS;
    await waitUntil(lastT + INTERVAL_MS);

    const type = avroType('bandwidthSample');
    const samples = (await readTopic(topic, { idleMs: 2_500 }))
      .map(({ message }) => type.fromBuffer(message.value!.subarray(5)) as BandwidthSample)
      .filter((s) => s.observedAtMs >= firstT && s.observedAtMs <= lastT);

    const billed = new Map<string, number>();
    for (const s of samples) {
      const key = `${s.observedAtMs - firstT} ${s.podName || '(unallocated)'} ${s.gpuUuid}`;
      expect(billed.has(key), `one sample per holder and grid point: ${key}`).toBe(false);
      billed.set(key, (s.nvlinkTxBytesPerSecond * (s.spanEndMs - s.spanStartMs)) / 1000);
      if (s.podName) {
        expect(s.podUid, `${s.podName}'s uid as the API stored it`).toBe(uids.get(s.podName));
        expect([s.subject, s.project, s.department]).toEqual(['acme', 'team-a', 'research']);
      } else {
        expect(s.subject).toBe('unallocated');
      }
    }
    const expected = new Map<string, number>();
    for (let t = firstT; t <= lastT; t += INTERVAL_MS) {
      const at = t - firstT;
      expected.set(`${at} train ${uuid(0)}`, 9e8 * 2);
      for (const [name, holding] of [
        ['half', half],
        ['quarter', quarter],
      ] as const) {
        const bytes = sharedBytes(holding, [half, quarter], t, 6e8);
        if (bytes > 0) expected.set(`${at} ${name} ${uuid(1)}`, bytes);
      }
      expected.set(`${at} (unallocated) ${uuid(2)}`, 3e8 * 2);
    }
    expect([...billed.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [key, bytes] of expected) {
      expect(billed.get(key)! / bytes, key).toBeCloseTo(1, 9);
    }
    // The interval holding the stored end is split there: the quarter's part, then the half's whole GPU.
    const endT = Math.ceil(quarter.endMs / INTERVAL_MS) * INTERVAL_MS;
    expect(billed.get(`${endT - firstT} quarter ${uuid(1)}`)).toBeCloseTo(6e8 * (1 / 3), 0);
    expect(samples.find((s) => s.podName === 'train')!.fbUsedBytes).toBe(40_000 * MIB);
  });
});
