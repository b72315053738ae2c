import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { parseDcgm } from '../src/dcgm.js';
import { ResponseTooLargeError, readCapped } from '../src/scrape.js';
import { ownNodeReadings, parseSelector, scrapeTargets } from '../src/targets.js';

/**
 * Issue 13 point 5 / docs/DESIGN.md §6.7: a tenant can label a pod app=nvidia-dcgm-exporter in its own namespace
 * and serve any page, naming a victim's pod. Only exporters in the configured namespace are scraped, an
 * exporter's readings count only for the node it runs on, and a page over the size cap is not parsed.
 */
const selector = parseSelector('app=nvidia-dcgm-exporter');

function exporterPod(namespace: string, nodeName: string, ip: string): V1Pod {
  return {
    metadata: {
      name: `dcgm-${nodeName}`,
      namespace,
      labels: { app: 'nvidia-dcgm-exporter' },
      annotations: { 'prometheus.io/port': '9400', 'prometheus.io/path': `/metrics/${nodeName}` },
    },
    spec: { nodeName, containers: [{ name: 'dcgm' }] },
    status: { phase: 'Running', podIP: ip },
  };
}

const series = (uuid: string, hostname: string, pod?: { namespace: string; name: string }) =>
  `DCGM_FI_PROF_NVLINK_TX_BYTES{gpu="0",UUID="${uuid}",modelName="NVIDIA A100-SXM4-80GB",Hostname="${hostname}"` +
  (pod ? `,namespace="${pod.namespace}",pod="${pod.name}"` : '') +
  `} 1000\n`;

describe('exporter discovery is limited to the configured namespace', () => {
  it('does not scrape a tenant-labelled exporter pod outside it', () => {
    const targets = scrapeTargets(
      [],
      [exporterPod('gpu-operator', 'node-a', '10.0.0.1'), exporterPod('runai-team-b', 'node-a', '10.9.9.9')],
      selector,
      'gpu-operator',
    );
    expect(targets).toEqual([{ url: 'http://10.0.0.1:9400/metrics/node-a', nodeName: 'node-a' }]);
  });

  it('takes the namespace from DCGM_EXPORTER_NAMESPACE, default gpu-operator', () => {
    const base = { KAFKA_BROKERS: 'k:9092', SCHEMA_REGISTRY_URL: 'http://r', CLUSTER_ID: 'c' };
    expect(loadConfig(base).dcgmExporterNamespace).toBe('gpu-operator');
    expect(loadConfig({ ...base, DCGM_EXPORTER_NAMESPACE: 'nvidia' }).dcgmExporterNamespace).toBe('nvidia');
    const targets = scrapeTargets([], [exporterPod('nvidia', 'node-a', '10.0.0.1')], selector, 'nvidia');
    expect(targets.map((t) => t.url)).toEqual(['http://10.0.0.1:9400/metrics/node-a']);
  });

  it('does not scrape an exporter pod that is not bound to a node', () => {
    const unbound = exporterPod('gpu-operator', 'node-a', '10.0.0.1');
    delete unbound.spec!.nodeName;
    expect(scrapeTargets([], [unbound], selector, 'gpu-operator')).toEqual([]);
  });

  it('keeps configured endpoints, with no node to check against', () => {
    expect(scrapeTargets(['http://static:9400/metrics'], undefined, selector, 'gpu-operator')).toEqual([
      { url: 'http://static:9400/metrics', nodeName: undefined },
    ]);
  });
});

describe("an exporter's readings count only for its own node", () => {
  const victim = { namespace: 'runai-team-a', name: 'victim' };
  const nodeOfPod = (ref: { namespace: string; name: string }) =>
    ref.name === 'victim' ? 'node-b' : ref.name === 'local' ? 'node-a' : undefined;

  it('ignores (and counts) series whose Hostname is another node', () => {
    const { devices } = parseDcgm(
      series('GPU-a', 'node-a') + series('GPU-b', 'node-b') + series('GPU-c', ''),
    );
    const own = ownNodeReadings(devices, 'node-a', nodeOfPod);
    expect(own.devices.map((d) => d.key)).toEqual(['GPU-a']);
    expect(own.foreignNode).toBe(2);
  });

  it('drops (and counts) a pod mapping to a pod that runs on another node', () => {
    const { devices } = parseDcgm(
      series('GPU-a', 'node-a', victim) +
        series('GPU-d', 'node-a', { namespace: 'runai-team-b', name: 'local' }),
    );
    const own = ownNodeReadings(devices, 'node-a', nodeOfPod);
    expect(own.devices.map((d) => [d.key, d.pod?.name])).toEqual([
      ['GPU-a', undefined],
      ['GPU-d', 'local'],
    ]);
    expect(own.foreignPod).toBe(1);
  });

  it('trusts a configured endpoint (no node) as it is', () => {
    const { devices } = parseDcgm(series('GPU-b', 'node-b', victim));
    const own = ownNodeReadings(devices, undefined, nodeOfPod);
    expect(own).toEqual({ devices, foreignNode: 0, foreignPod: 0 });
  });
});

describe('the scrape response size cap', () => {
  const page = series('GPU-a', 'node-a').repeat(100);

  it('reads a page under the cap', async () => {
    await expect(readCapped(new Response(page), page.length)).resolves.toBe(page);
  });

  it('rejects a page over the cap by its content-length, before reading it', async () => {
    const response = new Response(page, { headers: { 'content-length': String(page.length) } });
    await expect(readCapped(response, page.length - 1)).rejects.toBeInstanceOf(ResponseTooLargeError);
  });

  it('rejects a streamed page that passes the cap, without buffering the rest', async () => {
    let pulled = 0;
    const chunk = new TextEncoder().encode(page);
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 1;
        controller.enqueue(chunk);
      },
    });
    await expect(readCapped(new Response(endless), 10 * chunk.length)).rejects.toThrow(/over .* bytes/);
    expect(pulled).toBeLessThan(20);
  });

  it('takes the cap from DCGM_MAX_RESPONSE_BYTES, default 16 MiB', () => {
    const base = { KAFKA_BROKERS: 'k:9092', SCHEMA_REGISTRY_URL: 'http://r', CLUSTER_ID: 'c' };
    expect(loadConfig(base).dcgmMaxResponseBytes).toBe(16 * 2 ** 20);
    expect(loadConfig({ ...base, DCGM_MAX_RESPONSE_BYTES: '65536' }).dcgmMaxResponseBytes).toBe(65536);
  });
});
