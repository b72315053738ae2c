import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { BandwidthSample } from '@gpu-meter/kit/contracts';
import { createLogger } from '@gpu-meter/kit/runtime';
import type { SamplePublisher } from '@gpu-meter/kit/kafka';
import { createKubeConfig } from '@gpu-meter/kit/kubernetes';
import { Registry } from 'prom-client';
import { BandwidthCollector } from '../src/collector.js';
import { loadConfig } from '../src/config.js';
import { collectorMetrics } from '../src/metrics.js';

/**
 * Issue 13 Deliver: readiness reflects the current state, watches fresh included, in both collectors. A
 * scripted API server answers empty lists and holds watches open; "down", it answers 500 to everything.
 */
const INTERVAL = 200;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function scriptedApi() {
  const state = { down: false };
  const watches = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (state.down) {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"kind":"Status","code":500}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    if (url.searchParams.get('watch') === 'true') {
      res.write('');
      watches.add(res);
      res.on('close', () => watches.delete(res));
      return;
    }
    const kind = url.pathname.endsWith('/nodes') ? 'NodeList' : 'PodList';
    res.end(JSON.stringify({ kind, apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: [] }));
  });
  const goDown = () => {
    state.down = true;
    for (const watch of watches) watch.destroy();
  };
  return { server, state, goDown };
}

describe('BandwidthCollector readiness', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it('is not ready while its Kubernetes watches are not fresh, and ready again once they are', async () => {
    const api = scriptedApi();
    await new Promise<void>((resolve) => api.server.listen(0, '127.0.0.1', resolve));
    const { port } = api.server.address() as AddressInfo;
    const config = loadConfig({
      KAFKA_BROKERS: 'localhost:1',
      SCHEMA_REGISTRY_URL: 'http://localhost:1',
      CLUSTER_ID: 'readiness-test',
      K8S_API_URL: `http://127.0.0.1:${port}`,
      DCGM_ENDPOINTS: 'http://127.0.0.1:1/metrics',
      SAMPLING_INTERVAL_MS: String(INTERVAL),
      SAMPLE_DELAY_MS: '50',
      SCRAPE_TIMEOUT_MS: '50',
      WATCH_RELIST_INTERVALS: '2',
      WATCH_STALE_INTERVALS: '4',
    });
    const publisher = { publish: (_samples: BandwidthSample[]) => {} };
    const collector = new BandwidthCollector(
      config,
      createKubeConfig(config),
      publisher as unknown as SamplePublisher<BandwidthSample>,
      collectorMetrics(new Registry(), () => 0),
      createLogger('test', 'silent'),
    );
    await collector.start();
    close = async () => {
      await collector.stop();
      api.server.closeAllConnections();
      await new Promise((resolve) => api.server.close(resolve));
    };
    await sleep(3 * INTERVAL);
    expect(collector.ready).toBe(true);
    api.goDown();
    await sleep(INTERVAL);
    expect(collector.ready).toBe(false);
    api.state.down = false;
    // The informers retry with back-off (250 ms, then 500 ms ...): well inside 10 intervals.
    await sleep(10 * INTERVAL);
    expect(collector.ready).toBe(true);
  });
});
