import type { KubeConfig, V1Node, V1Pod } from '@kubernetes/client-node';
import {
  GridTicker,
  PodStore,
  SamplePublisher,
  errorMessage,
  type Attribution,
  type BandwidthSample,
  type Logger,
} from '@gpu-meter/kit';
import { nodeInformer, podInformer, type ResilientInformer } from '@gpu-meter/kit/kubernetes';
import { PodIndex, attributeDevice, candidateHolders } from './attribution.js';
import type { Config } from './config.js';
import { parseDcgm, type DeviceReading, type PodRef } from './dcgm.js';
import type { CollectorMetrics } from './metrics.js';
import { parseSelector, scrapeTargets } from './targets.js';

/**
 * Binds informers (pods for the reservation join, tenants and exporter discovery; nodes for GPU types),
 * the scraper, the attribution and the publisher. Decisions live in attribution.ts and dcgm.ts.
 */
export class BandwidthCollector {
  private readonly store = new PodStore();
  private readonly nodes = new Map<string, V1Node>();
  private readonly pods: ResilientInformer<V1Pod>;
  private readonly nodeWatch: ResilientInformer<V1Node>;
  private readonly ticker: GridTicker;
  private readonly attribution: Attribution;
  private readonly selector: ReturnType<typeof parseSelector>;
  /** The pod each device was mapped to at the previous scrape: a pod ending mid-interval is named only there. */
  private readonly previouslyNamed = new Map<string, PodRef | undefined>();
  private synced = false;

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
    const hooks = {
      onList: (kind: string) => metrics.lists.inc({ kind }),
      onError: (kind: string) => metrics.watchErrors.inc({ kind }),
    };
    this.pods = podInformer(
      kc,
      {
        add: (pod) => this.store.upsert(pod),
        update: (pod) => this.store.upsert(pod),
        delete: (pod) => this.store.remove(pod, Date.now()),
      },
      logger,
      hooks,
    );
    const setNode = (node: V1Node) => void this.nodes.set(node.metadata?.name ?? '', node);
    this.nodeWatch = nodeInformer(
      kc,
      { add: setNode, update: setNode, delete: (node) => void this.nodes.delete(node.metadata?.name ?? '') },
      logger,
      hooks,
    );
    this.ticker = new GridTicker(
      config.samplingIntervalMs,
      config.sampleDelayMs,
      (t, skipped) => this.tick(t, skipped),
      logger,
    );
  }

  get ready(): boolean {
    return this.synced;
  }

  async start(): Promise<void> {
    await Promise.all([this.nodeWatch.start(), this.pods.start()]);
    await Promise.all([this.nodeWatch.synced, this.pods.synced]);
    this.synced = true;
    this.ticker.start();
  }

  private async tick(t: number, skipped: number): Promise<void> {
    if (skipped > 0) {
      // Gauges cannot be read in the past: those intervals are lost, and said so.
      this.logger.error({ t, skipped }, 'grid points missed (process stalled); their traffic is not billed');
      this.previouslyNamed.clear();
    }
    const tracked = this.store.all();
    const targets = scrapeTargets(
      this.config.staticEndpoints,
      this.config.dcgmDiscovery
        ? tracked.filter((e) => e.deletedAtMs === undefined).map((e) => e.pod)
        : undefined,
      this.selector,
    );
    this.metrics.targets.set(targets.length);
    const readings = (await Promise.all(targets.map((url) => this.scrape(url)))).flat();
    const index = new PodIndex(tracked);
    const samples: BandwidthSample[] = [];
    for (const reading of readings) {
      const named = [this.previouslyNamed.get(reading.key), reading.pod];
      const holders = candidateHolders(named, index, this.nodes, this.attribution);
      samples.push(
        ...attributeDevice(reading, holders, t, {
          clusterId: this.config.clusterId,
          intervalMs: this.config.samplingIntervalMs,
        }),
      );
      this.previouslyNamed.set(reading.key, reading.pod);
    }
    this.metrics.samplesProduced.inc(samples.length);
    this.metrics.unallocatedSamples.inc(samples.filter((s) => s.podUid === '').length);
    this.metrics.unattributedSamples.inc(samples.filter((s) => s.podUid !== '' && s.project === '').length);
    this.publisher.publish(samples);
    this.store.prune(t - 2 * this.config.samplingIntervalMs);
    this.logger.debug(
      { t, targets: targets.length, devices: readings.length, samples: samples.length },
      'grid point sampled',
    );
  }

  private async scrape(url: string): Promise<DeviceReading[]> {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(this.config.scrapeTimeoutMs) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const { devices, skipped } = parseDcgm(await response.text());
      this.metrics.scrapes.inc({ result: 'ok' });
      this.metrics.skippedSeries.inc(skipped);
      return devices;
    } catch (error) {
      this.metrics.scrapes.inc({ result: 'error' });
      this.logger.warn(
        { url, err: errorMessage(error) },
        'scrape failed: this interval of its GPUs is not billed',
      );
      return [];
    }
  }

  async stop(): Promise<void> {
    await this.ticker.stop();
    await Promise.all([this.pods.stop(), this.nodeWatch.stop()]);
  }
}
