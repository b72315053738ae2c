import { randomUUID } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { errorMessage, type BandwidthSample } from '@gpu-meter/kit/contracts';
import type { Attribution, TrackedPod } from '@gpu-meter/kit/runai';
import { GridTicker, type Logger } from '@gpu-meter/kit/runtime';
import { SamplePublisher } from '@gpu-meter/kit/kafka';
import { collectorClusterCache, type ClusterCache } from '@gpu-meter/kit/kubernetes';
import { PodIndex, attributeDevice, candidateHolders } from './attribution.js';
import type { Config } from './config.js';
import { parseDcgm, type DeviceReading, type PodRef } from './dcgm.js';
import { NamedHolders } from './named-holders.js';
import type { CollectorMetrics } from './metrics.js';
import { ResponseTooLargeError, readCapped } from './scrape.js';
import { ownNodeReadings, parseSelector, scrapeTargets, type ScrapeTarget } from './targets.js';

/**
 * Binds informers (pods for the reservation join, tenants and exporter discovery; nodes for GPU types),
 * the scraper, the attribution and the publisher. Decisions live in attribution.ts and dcgm.ts.
 */
export class BandwidthCollector {
  private readonly cluster: ClusterCache;
  private readonly ticker: GridTicker;
  private readonly attribution: Attribution;
  private readonly selector: ReturnType<typeof parseSelector>;
  /** The pods each device was mapped to at earlier scrapes: a pod ending mid-interval is named only there. */
  private readonly named = new NamedHolders();
  /**
   * Random per process start: a replica's holders for a grid point come from one cache, so the aggregator
   * keeps one observer's samples per GPU and grid point; a restart cannot re-observe past points, so it
   * needs no stable identity.
   */
  private readonly observer = randomUUID();

  constructor(
    private readonly config: Config,
    kc: KubeConfig,
    private readonly publisher: SamplePublisher<BandwidthSample>,
    private readonly metrics: CollectorMetrics,
    private readonly logger: Logger,
  ) {
    this.attribution = {
      clusterId: config.clusterId,
      projectDepartments: config.projectDepartments,
      projectCustomers: config.projectCustomers,
      fallbackSubject: config.fallbackSubject,
    };
    this.selector = parseSelector(config.dcgmPodSelector);
    // The runai-collector's freshness: a hung watch credits an ended pod with its GPU's traffic (or a new
    // pod's to unallocated) only until the next relist.
    this.cluster = collectorClusterCache(kc, logger, metrics, config);
    this.ticker = new GridTicker(
      config.samplingIntervalMs,
      config.sampleDelayMs,
      (t, skipped) => this.tick(t, skipped),
      logger,
    );
  }

  /**
   * Listed, and the watches fresh. A stale cache still attributes each interval's traffic (a DCGM reading
   * cannot be taken again later, so skipping would lose it for everyone), but only until the next relist
   * and not ready meanwhile, so the operator sees it.
   */
  get ready(): boolean {
    return this.cluster.synced && this.cluster.health().fresh;
  }

  async start(): Promise<void> {
    await this.cluster.start();
    this.ticker.start();
  }

  private async tick(t: number, skipped: number): Promise<void> {
    if (skipped > 0) {
      // Gauges cannot be read in the past: those intervals are lost, and said so.
      this.logger.error({ t, skipped }, 'grid points missed (process stalled); their traffic is not billed');
      this.named.clear();
    }
    const tracked = this.cluster.pods.all();
    const targets = scrapeTargets(
      this.config.staticEndpoints,
      this.config.dcgmDiscovery
        ? tracked.filter((e) => e.deletedAtMs === undefined).map((e) => e.pod)
        : undefined,
      this.selector,
      this.config.dcgmExporterNamespace,
    );
    this.metrics.targets.set(targets.length);
    const scraped = await Promise.all(targets.map((target) => this.scrape(target)));
    const nodeOfPod = podNodes(tracked);
    const readings = scraped.flatMap((devices, k) => {
      const own = ownNodeReadings(devices, targets[k]!.nodeName, nodeOfPod);
      if (own.foreignNode + own.foreignPod > 0) {
        this.metrics.rejectedReadings.inc({ reason: 'foreign_node' }, own.foreignNode);
        this.metrics.rejectedReadings.inc({ reason: 'foreign_pod' }, own.foreignPod);
        this.logger.warn(
          {
            url: targets[k]!.url,
            node: targets[k]!.nodeName,
            foreignNode: own.foreignNode,
            foreignPod: own.foreignPod,
          },
          "exporter reported GPUs or pods of another node: ignored (readings count only for the exporter's node)",
        );
      }
      return own.devices;
    });
    const index = new PodIndex(tracked);
    const samples: BandwidthSample[] = [];
    for (const reading of readings) {
      const named = this.named.at(reading.key, reading.pod, index, t - this.config.samplingIntervalMs);
      const holders = candidateHolders(named, index, this.cluster.nodes, this.attribution);
      samples.push(
        ...attributeDevice(reading, holders, t, {
          clusterId: this.config.clusterId,
          intervalMs: this.config.samplingIntervalMs,
          observer: this.observer,
        }),
      );
    }
    this.metrics.samplesProduced.inc(samples.length);
    this.metrics.unallocatedSamples.inc(samples.filter((s) => s.podUid === '').length);
    this.metrics.unattributedSamples.inc(samples.filter((s) => s.podUid !== '' && s.project === '').length);
    this.publisher.publish(samples);
    this.cluster.pods.prune(t - 2 * this.config.samplingIntervalMs);
    this.logger.debug(
      { t, targets: targets.length, devices: readings.length, samples: samples.length },
      'grid point sampled',
    );
  }

  private async scrape({ url }: ScrapeTarget): Promise<DeviceReading[]> {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(this.config.scrapeTimeoutMs) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const { devices, skipped } = parseDcgm(await readCapped(response, this.config.dcgmMaxResponseBytes));
      this.metrics.scrapes.inc({ result: 'ok' });
      this.metrics.skippedSeries.inc(skipped);
      return devices;
    } catch (error) {
      this.metrics.scrapes.inc({ result: error instanceof ResponseTooLargeError ? 'too_large' : 'error' });
      this.logger.warn(
        { url, err: errorMessage(error) },
        'scrape failed: this interval of its GPUs is not billed',
      );
      return [];
    }
  }

  async stop(): Promise<void> {
    await this.ticker.stop();
    await this.cluster.stop();
  }
}

/** namespace/name → the node a tracked pod is bound to (the last one seen under that name). */
function podNodes(tracked: readonly TrackedPod[]): (ref: PodRef) => string | undefined {
  const nodes = new Map<string, string>();
  for (const { pod } of tracked) {
    const node = pod.spec?.nodeName;
    if (node) nodes.set(`${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`, node);
  }
  return (ref) => nodes.get(`${ref.namespace}/${ref.name}`);
}
