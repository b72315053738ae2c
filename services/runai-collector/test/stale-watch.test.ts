import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { PodAllocationSample } from '@gpu-meter/kit/contracts';
import { createLogger } from '@gpu-meter/kit/runtime';
import type { SamplePublisher } from '@gpu-meter/kit/kafka';
import { createKubeConfig } from '@gpu-meter/kit/kubernetes';
import { Counter, Gauge, Registry } from 'prom-client';
import { trainingPod } from '../../kit/test/runai/fixtures.js';
import { loadConfig } from '../src/config.js';
import { RunaiCollector } from '../src/collector.js';
import { collectorMetrics } from '../src/metrics.js';

/**
 * Issue 13 point 6 / issue 18 point 2: a watch that hangs silently or fails must not keep billing the
 * pods of its stale cache. A scripted API server: lists answer the pod's current state; watches either
 * stay open and silent (hung) or, while the API is "down", fail; after an outage a watch answers 410.
 */
const INTERVAL = 200;
const logger = createLogger('test', 'silent');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function scriptedApi(startMs: number) {
  const state = { down: false, endedAtMs: undefined as number | undefined, expired: false, version: 100 };
  const watches = new Set<ServerResponse>();
  const podNow = () => {
    const base = {
      metadata: { resourceVersion: String(state.version) },
      status: { startTime: new Date(startMs).toISOString() },
    };
    if (state.endedAtMs === undefined) return trainingPod(base);
    const finishedAt = new Date(state.endedAtMs).toISOString();
    return trainingPod({
      ...base,
      status: {
        ...base.status,
        phase: 'Succeeded',
        containerStatuses: [{ name: 'train-resnet', state: { terminated: { finishedAt } } }],
      },
    });
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (state.down) {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"kind":"Status","code":500}');
      return;
    }
    if (url.searchParams.get('watch') === 'true') {
      if (state.expired) {
        res.writeHead(410, { 'content-type': 'application/json' }).end('{"kind":"Status","code":410}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('');
      watches.add(res);
      res.on('close', () => watches.delete(res));
      return;
    }
    state.expired = false;
    const items = url.pathname.endsWith('/nodes') ? [] : [podNow()];
    const kind = url.pathname.endsWith('/nodes') ? 'NodeList' : 'PodList';
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({ kind, apiVersion: 'v1', metadata: { resourceVersion: String(state.version) }, items }),
    );
  });
  const goDown = () => {
    state.down = true;
    state.expired = true;
    for (const watch of watches) watch.destroy();
  };
  return { server, state, goDown, startMs };
}

async function startCollector(port: number) {
  const config = loadConfig({
    KAFKA_BROKERS: 'localhost:1',
    SCHEMA_REGISTRY_URL: 'http://localhost:1',
    CLUSTER_ID: 'stale-test',
    K8S_API_URL: `http://127.0.0.1:${port}`,
    SAMPLING_INTERVAL_MS: String(INTERVAL),
    SAMPLE_DELAY_MS: '50',
    BACKFILL_MAX_MS: String(60 * INTERVAL),
    WATCH_RELIST_INTERVALS: '2',
    WATCH_STALE_INTERVALS: '4',
  });
  const published: PodAllocationSample[] = [];
  const publisher = { publish: (samples: PodAllocationSample[]) => published.push(...samples) };
  const metrics = collectorMetrics(new Registry(), () => 0);
  const kc = createKubeConfig(config);
  const collector = new RunaiCollector(
    config,
    kc,
    publisher as unknown as SamplePublisher<PodAllocationSample>,
    metrics,
    logger,
  );
  await collector.start();
  return { collector, published, metrics };
}

/** GPU-time billed after `endMs`, counting each sample id once (the first copy, as the aggregator does). */
function billedAfter(samples: PodAllocationSample[], endMs: number): number {
  const seen = new Set<string>();
  let ms = 0;
  for (const s of samples) {
    if (seen.has(s.id)) continue;
    seen.add(s.id);
    ms += Math.max(0, s.spanEndMs - Math.max(s.spanStartMs, endMs));
  }
  return ms;
}

describe('RunaiCollector with a stale watch', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  async function setUp() {
    const api = scriptedApi(Date.now() - 10 * INTERVAL);
    await new Promise<void>((resolve) => api.server.listen(0, '127.0.0.1', resolve));
    const { port } = api.server.address() as AddressInfo;
    const running = await startCollector(port);
    close = async () => {
      await running.collector.stop();
      api.server.closeAllConnections();
      await new Promise((resolve) => api.server.close(resolve));
    };
    return { api, ...running };
  }

  it('stops billing a pod that ended behind a silently hung watch within the relist period', async () => {
    const { api, published } = await setUp();
    await sleep(3 * INTERVAL);
    const endedAtMs = Date.now();
    api.state.endedAtMs = endedAtMs; // seen by lists only: the open watch never says
    api.state.version += 1;
    await sleep(10 * INTERVAL);
    expect(published.length).toBeGreaterThan(0);
    // The relist every 2 intervals finds the end; what was sampled before it is the bound.
    expect(billedAfter(published, endedAtMs)).toBeLessThanOrEqual(2 * INTERVAL + INTERVAL);
    const lastT = Math.max(...published.map((s) => s.observedAtMs));
    expect(lastT).toBeLessThanOrEqual(endedAtMs + 4 * INTERVAL);
  });

  it('is not ready and samples nothing while the API fails, then backfills the outage to the real end', async () => {
    const { api, published, collector, metrics } = await setUp();
    await sleep(3 * INTERVAL);
    expect(collector.ready).toBe(true);
    api.goDown();
    await sleep(INTERVAL);
    expect(collector.ready).toBe(false);
    const endedAtMs = Date.now();
    api.state.endedAtMs = endedAtMs;
    api.state.version += 1;
    await sleep(3 * INTERVAL);
    const duringOutage = published.length;
    await sleep(2 * INTERVAL);
    expect(published.length).toBe(duringOutage);
    api.state.down = false;
    await sleep(6 * INTERVAL);
    expect(collector.ready).toBe(true);
    expect(billedAfter(published, endedAtMs)).toBe(0);
    // Every millisecond from the pod's start (backfilled at start-up) to its real end is billed once.
    expect(billedAfter(published, 0)).toBe(endedAtMs - api.startMs);
    expect(await (metrics.staleGridPoints as Counter).get()).toMatchObject({
      values: [{ value: expect.any(Number) }],
    });
    expect((await (metrics.watchFresh as Gauge).get()).values[0]?.value).toBe(1);
  });
});
