import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import {
  DEFAULT_TOPICS,
  USAGE_QUANTITIES,
  type UsageEvent,
  type UsageQuantity,
} from '@gpu-meter/kit/contracts';
import { readConfig } from '@gpu-meter/kit/config';
import { createSchemaRegistry, TopicSerde } from '@gpu-meter/kit/kafka';
import { ClickHouse, clickhouseConfigSpec } from '@gpu-meter/kit/clickhouse';
import {
  expectedTotals,
  startSimulator,
  type Scenario,
  type Simulator,
  type WindowRow,
} from '@gpu-meter/simulator';
import { FakeOpenMeter } from '../support/fake-openmeter.js';
import { ServiceProcess } from '../support/processes.js';
import { postponeUntilReady } from '../support/scenario-start.js';
import {
  compareInvoiceLines,
  foreignAttributions,
  mergeAttributions,
  totalsByInvoiceLine,
  type AmbiguousAttribution,
  type Comparison,
  type InvoiceKey,
  type InvoiceLine,
  type UsageRow,
} from './compare.js';
import { clickhouseRows, inRange, openMeterRows, readUsageEvents, type WindowRange } from './sources.js';

export interface PipelineOptions {
  scenario: Scenario;
  /** Endpoints of Kafka, the schema registry and ClickHouse (KAFKA_BROKERS, SCHEMA_REGISTRY_URL, CLICKHOUSE_*). */
  stackEnv: Record<string, string>;
  windowMs: number;
  intervalMs: number;
  /** Lead time before the scenario starts, so every service is up for its first grid point. */
  leadMs?: number;
  partitions?: number;
  /** Extra environment for every service (e.g. LOG_LEVEL). */
  serviceEnv?: Record<string, string>;
  /** Extra environment per service (after the pipeline's own), e.g. a short aggregator SESSION_TIMEOUT_MS. */
  env?: Partial<Record<string, Record<string, string>>>;
  /** Extra environment per replica of a service (index = replica), e.g. one collector's clock skewed. */
  replicaEnv?: Partial<Record<string, Array<Record<string, string> | undefined>>>;
  log?: (line: string) => void;
  /** Processes per service (default 1 each); two collector replicas keep scraping while one restarts. */
  replicas?: Partial<Record<string, number>>;
  /** 'run': the default topic names and database `gpu_meter` (npm start); 'isolated' (default): unique ones. */
  naming?: 'run' | 'isolated';
}

export interface Pipeline {
  readonly runId: string;
  readonly topics: Record<
    'podAllocations' | 'bandwidthSamples' | 'usageEvents' | 'lateSamples' | 'deadLetters',
    string
  >;
  readonly database: string;
  readonly simulator: Simulator;
  readonly openMeter: FakeOpenMeter;
  readonly openMeterUrl: string;
  /** Running processes per service (replicas). */
  readonly services: Record<string, ServiceProcess[]>;
  /**
   * SIGKILLs replica `index` of a service and starts a fresh process in its place, after `downMs`; with `env`
   * that replica runs with this extra environment from now on (a config rollout).
   */
  restart(service: string, index?: number, options?: RestartOptions): Promise<void>;
  /** Sends a signal to replica `index` without replacing it (SIGSTOP / SIGCONT: a paused process). */
  signal(service: string, index: number, signal: NodeJS.Signals): void;
  /** Windows compared: from the scenario start to the last window that ends by the scenario end. */
  readonly range: WindowRange;
  /** Kafka client on the pipeline's broker (for admin operations in trials). */
  readonly kafka: Kafka;
  /** The ground truth per invoice line and window of `scenario` (default the one played). */
  truth(scenario?: Scenario): WindowRow[];
  compare(options?: CompareOptions): Promise<PipelineComparison>;
  stop(): Promise<void>;
}

export interface RestartOptions {
  downMs?: number;
  env?: Record<string, string>;
}

export interface CompareOptions {
  /** Ground-truth lines to compare with (default `truth()`): a trial that changes the cluster computes its own. */
  truth?: UsageRow[];
  /** Where the truth is not unique: those lines are compared summed over the alternatives. */
  ambiguity?: AmbiguousAttribution;
  /** Only these quantities are compared (default all); a trial may compare others under other options. */
  quantities?: readonly UsageQuantity[];
  /** Maps every source's keys (truth included) before summing, e.g. to compare some lines summed over keys. */
  rekey?: (key: InvoiceKey, row: UsageRow) => InvoiceKey;
}

export interface PipelineComparison {
  comparison: Comparison;
  /** Per source, lines billed to an affected project under none of the ambiguity's alternatives. */
  foreign: Array<{ source: string; line: InvoiceLine }>;
  /** (invoice line, quantity) differences plus foreign lines; 1 when no source has usage at all. */
  differences: number;
  ok: boolean;
}

const SERVICES = [
  'runai-collector',
  'bandwidth-collector',
  'usage-aggregator',
  'clickhouse-sink',
  'openmeter-forwarder',
];

/**
 * The whole pipeline on real Kafka, registry and ClickHouse: the simulator plays the scenario in real time,
 * both collectors, the aggregator and both sinks run as processes, OpenMeter is the fake. Every run has its
 * own topics, consumer groups and database, so runs never see each other's data.
 */
export async function startPipeline(options: PipelineOptions): Promise<Pipeline> {
  const log = options.log ?? (() => undefined);
  const runId = randomUUID().slice(0, 8);
  const isolated = (options.naming ?? 'isolated') === 'isolated';
  const topics = isolated
    ? {
        podAllocations: `runai.pod-allocations.${runId}`,
        bandwidthSamples: `gpu.bandwidth-samples.${runId}`,
        usageEvents: `usage.events.${runId}`,
        lateSamples: `usage.late-samples.${runId}`,
        deadLetters: `usage.dead-letters.${runId}`,
      }
    : { ...DEFAULT_TOPICS };
  const database = isolated ? `gpu_meter_${runId}` : 'gpu_meter';
  const groupSuffix = isolated ? `-${runId}` : '';
  const { windowMs, intervalMs } = options;
  // Every collector must be ready before the first grid point (DCGM gauges have no history). A quiet machine
  // starts them in a few seconds; a loaded one may take longer, and then the start is postponed (below).
  const lead = options.leadMs ?? 12_000;
  // Start on a window boundary so the compared windows cover the scenario exactly.
  const plannedStartMs = Math.ceil((Date.now() + lead) / windowMs) * windowMs;
  const simulator = await startSimulator({
    scenario: options.scenario,
    startMs: plannedStartMs,
    clock: 'real',
  });
  const openMeterToken = `om-${randomUUID()}`;
  const openMeter = new FakeOpenMeter({ token: openMeterToken });
  const openMeterUrl = await openMeter.start();

  const common: Record<string, string> = {
    ...options.stackEnv,
    // PIPELINE_LOG_LEVEL=debug makes the aggregator log each transaction, for diagnosing a difference.
    LOG_LEVEL: process.env.PIPELINE_LOG_LEVEL ?? 'info',
    ...options.serviceEnv,
    POD_ALLOCATIONS_TOPIC: topics.podAllocations,
    BANDWIDTH_SAMPLES_TOPIC: topics.bandwidthSamples,
    USAGE_EVENTS_TOPIC: topics.usageEvents,
    OPS_PORT: '0',
  };
  const scenario = options.scenario;
  const collectorEnv = {
    CLUSTER_ID: scenario.clusterId,
    SAMPLING_INTERVAL_MS: String(intervalMs),
    // Scrape well inside the simulated exporter's lag (dcgm.lagMs, 1 s by default; see the simulator README),
    // so each scrape reads the rates of the interval its sample covers.
    SAMPLE_DELAY_MS: '250',
    K8S_API_URL: simulator.k8sUrl,
    PROJECT_DEPARTMENTS: JSON.stringify(scenario.departments ?? {}),
    PROJECT_CUSTOMERS: JSON.stringify(scenario.customers ?? {}),
  };
  const env: Record<string, Record<string, string>> = {
    'runai-collector': { ...collectorEnv },
    'bandwidth-collector': {
      ...collectorEnv,
      DCGM_ENDPOINTS: scenario.nodes.map((node) => simulator.dcgmUrl(node.name)).join(','),
      SCRAPE_TIMEOUT_MS: String(Math.min(5_000, Math.floor(intervalMs / 2))),
    },
    'usage-aggregator': {
      LATE_SAMPLES_TOPIC: topics.lateSamples,
      DEAD_LETTERS_TOPIC: topics.deadLetters,
      CONSUMER_GROUP_ID: `usage-aggregator${groupSuffix}`,
      TRANSACTIONAL_ID_PREFIX: `usage-aggregator${groupSuffix}`,
      WINDOW_MS: String(windowMs),
      // The collectors' interval: the aggregator checks it divides the window and bounds each sample's span.
      SAMPLING_INTERVAL_MS: String(intervalMs),
      GRACE_MS: String(2 * intervalMs),
      // Grace scales with the short test intervals, but a broker restart takes real seconds: an input that
      // went quiet only because its producer was reconnecting must keep holding stream time back, else its
      // buffered samples arrive after their windows closed (late). 20 s covers a broker restart here.
      IDLE_ADVANCE_MS: '20000',
      TOPIC_PARTITIONS: String(options.partitions ?? 3),
    },
    'clickhouse-sink': {
      CONSUMER_GROUP_ID: `clickhouse-sink${groupSuffix}`,
      CLICKHOUSE_DATABASE: database,
      DEAD_LETTER_TOPIC: topics.deadLetters,
      BATCH_MAX_WAIT_MS: '500',
    },
    'openmeter-forwarder': {
      CONSUMER_GROUP_ID: `openmeter-forwarder${groupSuffix}`,
      OPENMETER_URL: openMeterUrl,
      OPENMETER_TOKEN: openMeterToken,
      DEAD_LETTER_TOPIC: topics.deadLetters,
      // The run's topics are new, so reading from the beginning replays nothing; it only removes the race
      // between the forwarder's first join and the first usage event (a new group starts at the end).
      CONSUME_FROM_BEGINNING: 'true',
    },
  };

  // The aggregator creates the topics (AUTO_CREATE_TOPICS); the others wait for them.
  const services: Record<string, ServiceProcess[]> = {};
  const replicaEnv = Object.fromEntries(
    SERVICES.map((service) => [service, [...(options.replicaEnv?.[service] ?? [])]]),
  );
  const launch = (service: string, index: number) =>
    new ServiceProcess(service, {
      ...common,
      ...env[service],
      ...options.env?.[service],
      ...replicaEnv[service]![index],
    }).start();
  const stopServices = async () => {
    for (const service of [...SERVICES].reverse()) {
      for (const process of services[service] ?? []) {
        // A stopped (SIGSTOPped) process cannot act on SIGTERM until it runs again.
        process.signal('SIGCONT');
        await process.kill('SIGTERM').catch(() => undefined);
      }
    }
  };
  const launchAll = async () => {
    for (const service of SERVICES) {
      services[service] = Array.from({ length: options.replicas?.[service] ?? 1 }, (_, i) =>
        launch(service, i),
      );
      if (service === 'usage-aggregator') {
        await Promise.all(services[service].map((process) => process.waitForLog(/aggregator ready/, 90_000)));
      }
    }
    // DCGM gauges have no history: a bandwidth collector ready after the first grid point never bills it.
    const collectors = [...services['runai-collector']!, ...services['bandwidth-collector']!];
    await Promise.all(collectors.map((process) => process.waitForLog(/collector ready/, 90_000)));
  };
  try {
    await postponeUntilReady(simulator, launchAll(), windowMs, (line) => log(`pipeline ${runId}: ${line}`));
  } catch (error) {
    // A pipeline that failed to start leaves nothing running behind it (the next trial's would compete).
    await stopServices();
    await openMeter.stop();
    await simulator.close();
    throw error;
  }
  const startMs = simulator.startMs;
  const range = {
    fromMs: startMs,
    toMs: Math.floor((startMs + options.scenario.durationMs) / windowMs) * windowMs,
  };
  const restart = async (service: string, index = 0, restartOptions: RestartOptions = {}) => {
    const replicas = services[service]!;
    await replicas[index]!.kill('SIGKILL');
    if (restartOptions.env) replicaEnv[service]![index] = restartOptions.env;
    const downMs = restartOptions.downMs ?? 0;
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
    replicas[index] = launch(service, index);
  };
  log(
    `pipeline ${runId}: scenario starts at ${new Date(startMs).toISOString()}, compares windows up to ${new Date(range.toMs).toISOString()}`,
  );

  const kafka = new Kafka({
    clientId: `verify-${runId}`,
    brokers: options.stackEnv.KAFKA_BROKERS!.split(','),
    logLevel: logLevel.NOTHING,
  });
  const registrySettings = { schemaRegistryUrl: options.stackEnv.SCHEMA_REGISTRY_URL! };
  const usageSerde = new TopicSerde<UsageEvent>(
    createSchemaRegistry(registrySettings),
    registrySettings,
    topics.usageEvents,
    'usageEvent',
  );
  const clickhouse = new ClickHouse(
    readConfig(clickhouseConfigSpec, { ...options.stackEnv, CLICKHOUSE_DATABASE: database }),
  );

  const truth = (played: Scenario = scenario) =>
    expectedTotals(played, {
      samplingIntervalMs: intervalMs,
      startMs,
      fromMs: range.fromMs,
      toMs: range.toMs,
      windowMs,
    }).windows!;

  const compare = async (compareOptions: CompareOptions = {}): Promise<PipelineComparison> => {
    const events = (await readUsageEvents(kafka, usageSerde)).filter((event) =>
      inRange(range, event.windowStartMs, event.windowEndMs),
    );
    const rows: Record<string, UsageRow[]> = {
      truth: compareOptions.truth ?? truth(),
      topic: events,
      clickhouse: await clickhouseRows(clickhouse, range),
      openmeter: openMeterRows(openMeter.events, range),
    };
    const { ambiguity, quantities } = compareOptions;
    const merge = ambiguity ? mergeAttributions(ambiguity) : undefined;
    const own = compareOptions.rekey;
    const rekey =
      merge && own ? (key: InvoiceKey, row: UsageRow) => merge(own(key, row), row) : (merge ?? own);
    const selected = (r: UsageRow[]) =>
      quantities
        ? r.map((row) => ({
            ...row,
            ...Object.fromEntries(USAGE_QUANTITIES.filter((q) => !quantities.includes(q)).map((q) => [q, 0])),
          }))
        : r;
    const comparison = compareInvoiceLines(
      Object.fromEntries(
        Object.entries(rows).map(([name, r]) => [name, totalsByInvoiceLine(selected(r), rekey)]),
      ),
    );
    const foreign = ambiguity
      ? Object.entries(rows).flatMap(([source, r]) =>
          foreignAttributions(totalsByInvoiceLine(r), ambiguity).map((line) => ({ source, line })),
        )
      : [];
    const hasUsage = comparison.summary.length > 0;
    const differences = comparison.differences.length + foreign.length + (hasUsage ? 0 : 1);
    return { comparison, foreign, differences, ok: comparison.ok && foreign.length === 0 };
  };

  return {
    runId,
    topics,
    database,
    simulator,
    openMeter,
    openMeterUrl,
    services,
    restart,
    signal: (service, index, signal) => services[service]![index]!.signal(signal),
    range,
    kafka,
    truth,
    compare,
    stop: async () => {
      await stopServices();
      await clickhouse.close();
      await openMeter.stop();
      await simulator.close();
    },
  };
}
