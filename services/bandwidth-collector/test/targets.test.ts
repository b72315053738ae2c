import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { exporterUrl, parseSelector, scrapeTargets } from '../src/targets.js';

const exporter = (name: string, annotations: Record<string, string>, ip = '10.0.0.7'): V1Pod => ({
  metadata: { name, namespace: 'gpu-operator', labels: { app: 'nvidia-dcgm-exporter' }, annotations },
  spec: {
    nodeName: 'node-a',
    containers: [{ name: 'dcgm', ports: [{ name: 'metrics', containerPort: 9500 }] }],
  },
  status: { phase: 'Running', podIP: ip },
});

describe('exporter discovery', () => {
  it('builds the URL from prometheus.io annotations, else the metrics port and /metrics', () => {
    expect(
      exporterUrl(exporter('a', { 'prometheus.io/port': '19400', 'prometheus.io/path': '/metrics/node-a' })),
    ).toBe('http://10.0.0.7:19400/metrics/node-a');
    expect(exporterUrl(exporter('b', {}))).toBe('http://10.0.0.7:9500/metrics');
    expect(exporterUrl(exporter('c', {}, 'fd00::1'))).toBe('http://[fd00::1]:9500/metrics');
  });

  it('scrapes configured endpoints plus running pods matching the selector, each once', () => {
    const other = exporter('x', {});
    other.metadata!.labels = { app: 'something-else' };
    const pending = exporter('p', {});
    pending.status!.phase = 'Pending';
    const targets = scrapeTargets(
      ['http://static:9400/metrics'],
      [exporter('a', {}), other, pending],
      parseSelector('app=nvidia-dcgm-exporter'),
      'gpu-operator',
    );
    expect(targets).toEqual([
      { url: 'http://10.0.0.7:9500/metrics', nodeName: 'node-a' },
      { url: 'http://static:9400/metrics', nodeName: undefined },
    ]);
    expect(scrapeTargets(['http://static:9400/metrics'], undefined, [], 'gpu-operator')).toEqual([
      { url: 'http://static:9400/metrics', nodeName: undefined },
    ]);
  });

  it('supports =, == and != terms', () => {
    expect(parseSelector('app=dcgm, tier==gpu,env!=dev')).toEqual([
      { key: 'app', value: 'dcgm', equal: true },
      { key: 'tier', value: 'gpu', equal: true },
      { key: 'env', value: 'dev', equal: false },
    ]);
    expect(() => parseSelector('app in (a,b)')).toThrow(/unsupported/);
  });
});

describe('config', () => {
  const base = { KAFKA_BROKERS: 'k:9092', SCHEMA_REGISTRY_URL: 'http://r', CLUSTER_ID: 'c' };
  it('needs endpoints when discovery is off, and names the variable', () => {
    expect(() => loadConfig({ ...base, DCGM_DISCOVERY: 'false' })).toThrow(/DCGM_ENDPOINTS/);
    expect(() => loadConfig({ ...base, DCGM_ENDPOINTS: 'ftp://x' })).toThrow(/DCGM_ENDPOINTS/);
    expect(
      loadConfig({ ...base, DCGM_ENDPOINTS: 'http://a/metrics, http://b/metrics' }).staticEndpoints,
    ).toEqual(['http://a/metrics', 'http://b/metrics']);
  });
  it('keeps a scrape inside the interval', () => {
    expect(() =>
      loadConfig({ ...base, SAMPLING_INTERVAL_MS: '1000', SAMPLE_DELAY_MS: '500', SCRAPE_TIMEOUT_MS: '600' }),
    ).toThrow(/SCRAPE_TIMEOUT_MS/);
  });
});
