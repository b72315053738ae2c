import { describe, expect, it } from 'vitest';
import { ConfigError } from '@gpu-meter/kit/contracts';
import { watchCacheOptions } from '@gpu-meter/kit/kubernetes';
import { loadConfig } from '../src/config.js';

/**
 * The stale-watch fault trial: with every watch hung, the bandwidth collector kept crediting an ended pod with
 * its GPU's traffic until the kit's fixed 60 s relist (30 intervals at the trial's 2 s), where the
 * runai-collector stops within WATCH_RELIST_INTERVALS + 1. Both collectors now read the same two settings.
 */
const base = { KAFKA_BROKERS: 'k:9092', SCHEMA_REGISTRY_URL: 'http://r', CLUSTER_ID: 'c' };

describe('bandwidth-collector watch freshness', () => {
  it('relists every WATCH_RELIST_INTERVALS sampling intervals, like the runai-collector (default 4 and 6)', () => {
    const config = loadConfig({
      ...base,
      SAMPLING_INTERVAL_MS: '2000',
      SAMPLE_DELAY_MS: '250',
      SCRAPE_TIMEOUT_MS: '1000',
    });
    expect(watchCacheOptions(config)).toEqual({ relistMs: 8_000, staleAfterMs: 12_000 });
    const tuned = loadConfig({ ...base, WATCH_RELIST_INTERVALS: '2', WATCH_STALE_INTERVALS: '3' });
    expect(watchCacheOptions(tuned)).toEqual({ relistMs: 30_000, staleAfterMs: 45_000 });
  });

  it('fails at start-up naming WATCH_STALE_INTERVALS when it is not above the relist', () => {
    const bad = () => loadConfig({ ...base, WATCH_RELIST_INTERVALS: '6', WATCH_STALE_INTERVALS: '6' });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/WATCH_STALE_INTERVALS/);
  });
});
