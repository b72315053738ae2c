import type { PodAllocationSample } from '@gpu-meter/kit/contracts';
import { gridFloor } from '@gpu-meter/kit/runai';
import { GridTicker, type Logger } from '@gpu-meter/kit/runtime';
import { SamplePublisher } from '@gpu-meter/kit/kafka';
import { collectorClusterCache, type ClusterCache } from '@gpu-meter/kit/kubernetes';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from './config.js';
import type { CollectorMetrics } from './metrics.js';
import { AllocationPlanner, rejectedPodDeadLetter, type RejectedPod } from './planner.js';

/**
 * Binds the informers, the pod store, the planner, the grid ticker and the publisher. All decisions are in
 * AllocationPlanner; this only moves data between them.
 */
export class RunaiCollector {
  private readonly cluster: ClusterCache;
  private readonly planner: AllocationPlanner;
  private readonly ticker: GridTicker;
  private readonly warnedUnattributed = new Set<string>();
  private readonly warnedInputs = new Set<string>();
  /** The first grid point skipped for a stale cache, while it is stale. */
  private staleSince: number | undefined;

  constructor(
    private readonly config: Config,
    kc: KubeConfig,
    private readonly publisher: SamplePublisher<PodAllocationSample>,
    private readonly metrics: CollectorMetrics,
    private readonly logger: Logger,
  ) {
    this.planner = new AllocationPlanner(config.samplingIntervalMs, config.backfillMaxMs, {
      clusterId: config.clusterId,
      projectDepartments: config.projectDepartments,
      projectCustomers: config.projectCustomers,
      fallbackSubject: config.fallbackSubject,
    });
    this.cluster = collectorClusterCache(kc, logger, metrics, config);
    this.ticker = new GridTicker(
      config.samplingIntervalMs,
      config.sampleDelayMs,
      (t) => this.tick(t),
      logger,
    );
  }

  /** Listed, and the watches fresh: a stale cache would bill pods that may have ended. */
  get ready(): boolean {
    return this.cluster.synced && this.cluster.health().fresh;
  }

  /** Lists pods and nodes, backfills up to the latest due grid point, then samples on every grid point. */
  async start(): Promise<void> {
    await this.cluster.start();
    const latestDue = gridFloor(Date.now() - this.config.sampleDelayMs, this.config.samplingIntervalMs);
    await this.tick(latestDue);
    this.ticker.start(latestDue);
  }

  private async tick(T: number): Promise<void> {
    if (!this.vouchable(T)) return;
    const plan = this.planner.plan(this.cluster.pods.all(), this.cluster.nodes, T);
    this.metrics.samplesProduced.inc(plan.samples.length);
    this.metrics.samplesBackfilled.inc(plan.backfilled);
    for (const pod of plan.unattributed) {
      const count = plan.samples.filter((sample) => sample.podUid === pod.uid).length;
      this.metrics.unattributedSamples.inc(count);
      if (!this.warnedUnattributed.has(pod.uid)) {
        this.warnedUnattributed.add(pod.uid);
        this.logger.warn(
          { pod: `${pod.namespace}/${pod.name}`, subject: pod.subject },
          'Run:ai pod has no project (label project, namespace runai-<project>, label runai/queue): billing the fallback subject',
        );
      }
    }
    for (const pod of plan.corrected) {
      const count = plan.samples.filter((sample) => sample.podUid === pod.uid).length;
      for (const issue of pod.inputIssues) {
        this.metrics.untrustedInputs.inc({ input: issue.input, reason: issue.reason }, count);
        const key = `${pod.uid}\u0000${issue.input}\u0000${issue.reason}`;
        if (this.warnedInputs.has(key)) continue;
        this.warnedInputs.add(key);
        this.logger.warn(
          {
            pod: `${pod.namespace}/${pod.name}`,
            input: issue.input,
            reason: issue.reason,
            detail: issue.detail,
          },
          'Run:ai pod input not billed as written (checked against container limits and node capacity)',
        );
      }
    }
    this.publisher.publish(plan.samples);
    this.reportRejected(plan.rejected);
    // Deleted pods are kept until no future grid point can overlap them.
    this.cluster.pods.prune(T - this.config.samplingIntervalMs);
    const size = this.cluster.pods.size;
    this.metrics.trackedPods.set(size.live + size.departed);
    this.logger.debug(
      { t: T, samples: plan.samples.length, backfilled: plan.backfilled },
      'grid point sampled',
    );
  }

  /**
   * Each rejected pod is dead-lettered for its points and counted; logged when its rejection is new or
   * changed, not at every grid point while it stays rejected (its dead letters and the count go on).
   */
  private reportRejected(rejected: readonly RejectedPod[]): void {
    for (const pod of rejected) {
      this.metrics.rejectedPodGridPoints.inc({ reason: pod.reason }, pod.gridPointsMs.length);
      if (pod.repeated) continue;
      this.logger.error(
        {
          pod: `${pod.namespace}/${pod.name}`,
          uid: pod.uid,
          clusterId: pod.clusterId,
          reason: pod.reason,
          detail: pod.detail,
          t: pod.gridPointsMs.at(-1),
          topic: this.config.deadLetterTopic,
        },
        'Run:ai pod rejected by the pod model: not sampled, its grid points dead-lettered (logged again only if the reason changes)',
      );
    }
    if (rejected.length > 0) this.publisher.deadLetter(rejected.map(rejectedPodDeadLetter));
  }

  /**
   * Whether the cache can vouch for grid point T. A stale one is skipped, not sampled: the planner keeps
   * each pod's last planned point, so once fresh again the skipped points are backfilled from what the
   * relist or the resumed watch then shows (as after a restart), never from the stale state.
   */
  private vouchable(T: number): boolean {
    const health = this.cluster.health();
    this.metrics.watchFresh.set(health.fresh ? 1 : 0);
    if (!health.fresh) {
      this.metrics.staleGridPoints.inc();
      if (this.staleSince === undefined) {
        this.staleSince = T;
        this.logger.error(
          { t: T, reason: health.reason, lastEvidenceMs: health.lastEvidenceMs },
          'Kubernetes watch not fresh: not ready, grid points not sampled until it is',
        );
      }
      return false;
    }
    if (this.staleSince !== undefined) {
      this.logger.info(
        { skippedFrom: this.staleSince, t: T },
        'Kubernetes watch fresh again: backfilling the skipped grid points',
      );
      this.staleSince = undefined;
    }
    return true;
  }

  async stop(): Promise<void> {
    await this.ticker.stop();
    await this.cluster.stop();
  }
}
