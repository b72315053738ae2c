/**
 * `npm run faults [-- --scenario FILE --only NAME[,NAME...] --seed N ...]`: the long fault suite, outside the
 * default test run. Each trial plays the scenario through the whole pipeline while injecting one fault, then
 * compares ground truth, usage topic, ClickHouse and OpenMeter per invoice line (subject, project,
 * department, workload type, GPU type) and window. `--only` takes exact trial names or prefixes (`kill`).
 * Each trial ends with a line `trial NAME: N differences`; the run's last line is `faults: N differences`
 * and the exit code is 1 on any difference.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadScenario, buildModel, renderMetrics, type K8sObject, type Scenario } from '@gpu-meter/simulator';
import {
  renderComparison,
  truthAcross,
  type AmbiguousAttribution,
  type InvoiceKey,
  type UsageRow,
} from '../pipeline/compare.js';
import { USAGE_QUANTITIES, type PodAllocationSample, type UsageQuantity } from '@gpu-meter/kit/contracts';
import { createSchemaRegistry, DEAD_LETTER_HEADERS, TopicSerde } from '@gpu-meter/kit/kafka';
import { RegistryProxy } from '../pipeline/registry-proxy.js';
import { readRecords } from '../pipeline/sources.js';
import type { Fault } from '../support/fake-openmeter.js';
import { ServiceProcess } from '../support/processes.js';
import {
  startPipeline,
  type CompareOptions,
  type Pipeline,
  type PipelineOptions,
} from '../pipeline/pipeline.js';
import { endpointsFromEnvironment, ENDPOINT_KEYS, REPO_ROOT } from '../support/stack-env.js';

const { values: args } = parseArgs({
  options: {
    scenario: { type: 'string', default: `${REPO_ROOT}test/scenarios/whole-gpus.json` },
    'kills-per-service': { type: 'string', default: '3' },
    'outage-ms': { type: 'string', default: '60000' },
    'broker-down-ms': { type: 'string', default: '30000' },
    'collector-down-ms': { type: 'string', default: '180000' },
    'window-ms': { type: 'string', default: '10000' },
    'interval-ms': { type: 'string', default: '2000' },
    only: { type: 'string' },
    seed: { type: 'string', default: String(Date.now()) },
  },
});

const stackEnv = endpointsFromEnvironment();
const missing = ENDPOINT_KEYS.filter((key) => !stackEnv[key]);
if (missing.length > 0) throw new Error(`${missing.join(', ')} not set: run \`npm run stack:up\` first`);
const scenarioFile = args.scenario!;
const windowMs = Number(args['window-ms']);
const intervalMs = Number(args['interval-ms']);
const outageMs = Number(args['outage-ms']);
// Longer than the pipeline's IDLE_ADVANCE_MS (20 s): an outage must not count as the inputs' quiet time.
const brokerDownMs = Number(args['broker-down-ms']);
// Longer than grace and IDLE_ADVANCE_MS: an upgrade or node drain, not a blip.
const collectorDownMs = Number(args['collector-down-ms']);
const killsPerService = Number(args['kills-per-service']);
// The runai-collector's default: how far a restarted replica re-publishes, under the config it restarts with.
const BACKFILL_MAX_MS = 300_000;
// The aggregator's minimum session timeout: a paused instance loses its tasks quickly.
const ZOMBIE_SESSION_TIMEOUT_MS = 6_000;
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

// A small seeded generator so a failing run can be repeated with --seed.
let state = Number(args.seed) % 2_147_483_647 || 1;
const random = () => (state = (state * 48_271) % 2_147_483_647) / 2_147_483_647;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sleepUntil = (ms: number) => sleep(Math.max(0, ms - Date.now()));
const say = (line: string) => process.stdout.write(`${line}\n`);

/** What a trial did: faults injected, and how to compare when the fault makes the truth non-unique. */
interface Injected {
  faults: number;
  /**
   * How to compare (default: every quantity against `truth()`). A function is called at each comparison,
   * once everything settled, for a truth that depends on what the pipeline published; its comparisons'
   * differences add up.
   */
  compare?: CompareOptions | (() => Promise<CompareOptions[]>);
  /** Differences the invoice comparison cannot see (e.g. events OpenMeter received twice), counted at the end. */
  check?: () => Promise<number>;
}

interface Trial {
  name: string;
  description: string;
  /** Pipeline options beyond the trials' common ones (replicas, per-service or per-replica env). */
  pipeline?: Partial<PipelineOptions>;
  /** The scenario as this trial plays it, when the fault needs it changed (said in the trial). */
  scenario?(scenario: Scenario): Scenario;
  inject(pipeline: Pipeline): Promise<Injected>;
}

interface TrialResult {
  name: string;
  faults: number;
  differences: number;
}

/** A moment `fraction` of the way through the compared windows. */
const at = (pipeline: Pipeline, fraction: number) =>
  pipeline.range.fromMs + fraction * (pipeline.range.toMs - pipeline.range.fromMs);

/** Runs one pipeline trial: pipeline up, inject during the scenario, then compare once everything settled. */
async function runTrial(trial: Trial, scenario: Scenario): Promise<TrialResult> {
  const pipeline = await startPipeline({
    scenario,
    stackEnv,
    windowMs,
    intervalMs,
    // Two replicas of each collector: DCGM gauges have no history, so a scrape missed while the only
    // bandwidth collector is down cannot be backfilled. Replicas publish the same ids; the aggregator dedupes.
    replicas: { 'runai-collector': 2, 'bandwidth-collector': 2 },
    // Two aggregators and six collectors start on two loaded cores: 8 s was not always enough (a bandwidth
    // collector ready 2.3 s after the start missed the first grid point of a relabel trial).
    leadMs: 20_000,
    log: say,
    ...trial.pipeline,
  });
  try {
    const injected = await trial.inject(pipeline);
    // The last window closes at its end + grace; a restarted service needs a moment past its fault too.
    await sleepUntil(Math.max(pipeline.range.toMs, Date.now()) + 2 * intervalMs + 5_000);
    const deadline = Date.now() + 180_000;
    const compareAll = async () => {
      const { compare } = injected;
      const options = typeof compare === 'function' ? await compare() : [compare ?? {}];
      const parts = await Promise.all(options.map((option) => pipeline.compare(option)));
      return {
        parts,
        ok: parts.every((part) => part.ok),
        differences: parts.reduce((sum, part) => sum + part.differences, 0),
      };
    };
    let result = await compareAll();
    while (!result.ok && Date.now() < deadline) {
      await sleep(3_000);
      result = await compareAll();
    }
    const extra = injected.check ? await injected.check() : 0;
    if (result.differences > 0) {
      for (const part of result.parts) {
        say(renderComparison(part.comparison));
        for (const { source, line } of part.foreign)
          say(`  ${source}: billed to neither the old nor the new attribution: ${JSON.stringify(line)}`);
      }
      say(await diagnostics(pipeline));
    }
    return { name: trial.name, faults: injected.faults, differences: result.differences + extra };
  } finally {
    await pipeline.stop();
  }
}

/** What a failed trial leaves to look at: late and dead-lettered records, and each process's errors. */
async function diagnostics(pipeline: Pipeline): Promise<string> {
  const admin = pipeline.kafka.admin();
  await admin.connect();
  const lines: string[] = [];
  try {
    for (const topic of [pipeline.topics.lateSamples, pipeline.topics.deadLetters]) {
      const offsets = await admin.fetchTopicOffsets(topic).catch(() => []);
      lines.push(`${topic}: ${offsets.reduce((sum, o) => sum + Number(o.high) - Number(o.low), 0)} records`);
    }
  } finally {
    await admin.disconnect();
  }
  for (const [service, processes] of Object.entries(pipeline.services)) {
    for (const process of processes) {
      // Warnings too: a failed scrape is a warning, and it is exactly an interval not billed.
      const errors = process.output.filter(
        (line) =>
          /"level":(40|50|60)/.test(line) && !/ECONNREFUSED|coordinator|"component":"kafkajs"/.test(line),
      );
      lines.push(
        `${service}${process.running ? '' : ' (exited)'}: ${errors.length} warning and error lines`,
        ...errors.slice(-3),
      );
    }
  }
  return lines.join('\n');
}

/** SIGKILL a replica of `service` at random moments of the scenario, restarting it after 0-2 s. */
function killTrial(service: string): Trial {
  return {
    name: `kill-${service}`,
    description: `kill -9 ${service} ${killsPerService} times at random moments`,
    inject: async (pipeline) => {
      // A SIGKILL between a POST and its commit resends that batch: the one window the forwarder leaves to
      // OpenMeter's dedupe, which its README says to turn on (Redis, expiration above a crash-restart).
      // Configured so here; every other trial runs the fake with dedupe off, as OpenMeter ships.
      if (service === 'openmeter-forwarder') pipeline.openMeter.setDedupe('ttl:3600000');
      const moments = Array.from({ length: killsPerService }, () => at(pipeline, random())).sort();
      for (const moment of moments) {
        await sleepUntil(moment);
        const replicas = pipeline.services[service]!.length;
        const index = Math.floor(random() * replicas);
        await pipeline.restart(service, index, { downMs: Math.floor(random() * 2000) });
        say(
          `  kill -9 ${service}[${index}] at +${Math.round((Date.now() - pipeline.range.fromMs) / 1000)} s`,
        );
      }
      return { faults: moments.length };
    },
  };
}

/**
 * Asynchronous on purpose: the simulator (fake Kubernetes API and DCGM exporter) runs in this process, and
 * a synchronous child process would freeze it for the whole restart, so the collectors' scrapes would time
 * out and the trial would measure the harness instead of the pipeline.
 */
async function stackScript(script: string, action: string): Promise<void> {
  const child = spawn('bash', [`test/stack/${script}`, action], { cwd: REPO_ROOT, stdio: 'inherit' });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`test/stack/${script} ${action} exited with ${code}`);
}

function stackOutage(name: string, script: string, fraction: number, downMs: number): Trial {
  return {
    name,
    description: `${script.replace('.sh', '')} stopped for ${downMs} ms mid-run`,
    inject: async (pipeline) => {
      await sleepUntil(at(pipeline, fraction));
      await stackScript(script, 'stop');
      await sleep(downMs);
      await stackScript(script, 'start');
      return { faults: 1 };
    },
  };
}

/** The pod that runs longest across `[fromMs, toMs)` of the scenario (offsets), with a `project` label. */
function podRunningAcross(scenario: Scenario, fromMs: number, toMs: number) {
  const candidates = buildModel(scenario)
    .pods.filter(
      (p) => p.project && !p.pod.omit.includes('project') && p.runStart <= fromMs && p.runEnd >= toMs,
    )
    .sort(
      (a, b) =>
        b.gpus - a.gpus || Math.min(b.runEnd, 1e15) - b.runStart - (Math.min(a.runEnd, 1e15) - a.runStart),
    );
  const pod = candidates[0];
  if (!pod) throw new Error(`no labelled pod runs across offsets ${fromMs}-${toMs} ms of ${scenarioFile}`);
  return pod;
}

/**
 * Replica 1 of both collectors restarts with a customer map that moves one project to another customer
 * (one ConfigMap feeds both collectors), replica 0 follows later. Until both run the new map (and for the backfill a restart re-publishes), a sample may carry either
 * subject: those windows compare summed over the two, the others exactly, and nothing may go to a third.
 */
const configRollout: Trial = {
  name: 'config-rollout',
  description: 'runai-collector replicas on different PROJECT_CUSTOMERS, then both on the new one',
  pipeline: { env: { 'runai-collector': { BACKFILL_MAX_MS: String(BACKFILL_MAX_MS) } } },
  inject: async (pipeline) => {
    const scenario = pipeline.simulator.model.scenario;
    const startMs = pipeline.simulator.startMs;
    const first = at(pipeline, 0.25);
    const second = at(pipeline, 0.5);
    const pod = podRunningAcross(scenario, first - startMs, second - startMs);
    const oldSubject = pod.subject!;
    const newSubject = `${oldSubject}-rolled`;
    const customers = { ...scenario.customers, [pod.project]: newSubject };
    const env = { BACKFILL_MAX_MS: String(BACKFILL_MAX_MS), PROJECT_CUSTOMERS: JSON.stringify(customers) };
    const rollOut = (index: number) =>
      Promise.all(
        ['runai-collector', 'bandwidth-collector'].map((service) =>
          pipeline.restart(service, index, {
            env: service === 'runai-collector' ? env : { PROJECT_CUSTOMERS: env.PROJECT_CUSTOMERS },
          }),
        ),
      );
    await sleepUntil(first);
    await rollOut(1);
    say(`  collectors[1] restarted mapping ${pod.project} to ${newSubject} (was ${oldSubject})`);
    await sleepUntil(second);
    await rollOut(0);
    say('  collectors[0] restarted with the new map');
    const ambiguity: AmbiguousAttribution = {
      fromMs: first - BACKFILL_MAX_MS,
      // Replicas 0 published old-map samples up to the grid point before `second`.
      toMs: second + 2 * intervalMs,
      alternatives: [oldSubject, newSubject].map((subject) => ({
        subject,
        project: pod.project,
        department: pod.department,
      })),
    };
    const truth = truthAcross(pipeline.truth(), pipeline.truth({ ...scenario, customers }), ambiguity.fromMs);
    return { faults: 2, compare: { truth, ambiguity } };
  },
};

/**
 * A running pod's `project` label is edited mid-run. Each replica sees the edit on its own watch, so the
 * samples around the edit may carry either project: those windows compare summed over the two attributions.
 */
const relabel: Trial = {
  name: 'relabel',
  description: "a running pod's project label edited mid-run",
  inject: async (pipeline) => {
    const scenario = pipeline.simulator.model.scenario;
    const startMs = pipeline.simulator.startMs;
    const editAt = at(pipeline, 0.5);
    // Watch delivery is milliseconds; a sample is taken SAMPLE_DELAY_MS after its grid point.
    const margin = 2 * intervalMs;
    const pod = podRunningAcross(scenario, editAt - startMs - margin, editAt - startMs + margin);
    const project = `${pod.project}-relabelled`;
    await sleepUntil(editAt);
    await pipeline.simulator.setPodLabels(pod.namespace, pod.pod.name, { project });
    say(`  ${pod.namespace}/${pod.pod.name}: label project ${pod.project} -> ${project}`);
    const relabelled = {
      ...scenario,
      pods: scenario.pods.map((p) =>
        p === pod.pod ? { ...p, namespace: pod.namespace, labels: { ...p.labels, project } } : p,
      ),
    };
    const ambiguity: AmbiguousAttribution = {
      fromMs: editAt - margin,
      toMs: editAt + margin,
      alternatives: [
        { subject: pod.subject!, project: pod.project, department: pod.department },
        {
          subject: scenario.customers[project] ?? project,
          project,
          department: scenario.departments[project] ?? '',
        },
      ],
    };
    const truth = truthAcross(pipeline.truth(), pipeline.truth(relabelled), ambiguity.fromMs);
    return { faults: 1, compare: { truth, ambiguity } };
  },
};

/** Stops replica `index` with SIGTERM (a graceful restart, a rollout) and starts it again, same environment. */
async function gracefulRestart(pipeline: Pipeline, service: string, index: number): Promise<void> {
  const replicas = pipeline.services[service]!;
  const old = replicas[index]!;
  await old.kill('SIGTERM');
  replicas[index] = new ServiceProcess(service, old.env).start();
}

/** Scales a service up by one replica (same environment as replica 0); the pipeline stops it at the end. */
function addReplica(pipeline: Pipeline, service: string): number {
  const replicas = pipeline.services[service]!;
  replicas.push(new ServiceProcess(service, replicas[0]!.env).start());
  return replicas.length - 1;
}

/** Event ids the fake OpenMeter accepted more than once, counted over its raw requests (no dedupe hides them). */
function duplicatesReceived(pipeline: Pipeline): () => Promise<number> {
  return async () => {
    const counts = pipeline.openMeter.acceptedCounts();
    const twice = [...counts].filter(([, n]) => n > 1);
    const extra = twice.reduce((sum, [, n]) => sum + n - 1, 0);
    say(
      `  OpenMeter raw requests: ${counts.size} event ids accepted, ${twice.length} of them more than once (${extra} extra arrivals)`,
    );
    for (const [id, n] of twice.slice(0, 5)) say(`    ${id}: ${n} times`);
    return extra;
  };
}

/** Records the forwarder dead-lettered (its service header), read from the run's dead-letter topic until idle. */
async function forwarderDeadLetters(pipeline: Pipeline): Promise<number> {
  const consumer = pipeline.kafka.consumer({
    groupId: `faults-dlq-${pipeline.runId}-${Date.now()}`,
    maxWaitTimeInMs: 200,
  });
  let count = 0;
  let lastAt = Date.now();
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [pipeline.topics.deadLetters], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        lastAt = Date.now();
        if (String(message.headers?.[DEAD_LETTER_HEADERS.service] ?? '') === 'openmeter-forwarder') count++;
      },
    });
    const started = Date.now();
    while (Date.now() - Math.max(lastAt, started) < 5_000) await sleep(250);
  } finally {
    await consumer.disconnect();
  }
  return count;
}

const OPENMETER_STORM_MS = 60_000;

/** Records on a topic, or 0 when it does not exist (nothing was ever written there). */
async function recordsOn(pipeline: Pipeline, topic: string): Promise<number> {
  const admin = pipeline.kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic).catch(() => []);
    return offsets.reduce((sum, o) => sum + Number(o.high) - Number(o.low), 0);
  } finally {
    await admin.disconnect();
  }
}

const registrySettings = () => ({ schemaRegistryUrl: stackEnv.SCHEMA_REGISTRY_URL! });
const podSamples = (pipeline: Pipeline) =>
  readRecords(
    pipeline.kafka,
    new TopicSerde<PodAllocationSample>(
      createSchemaRegistry(registrySettings()),
      registrySettings(),
      pipeline.topics.podAllocations,
      'podAllocationSample',
    ),
  );

const ALLOCATION_QUANTITIES: readonly UsageQuantity[] = [
  'gpuAllocationSeconds',
  'gpuMemoryAllocatedByteSeconds',
  'cpuCoreSeconds',
  'memoryByteSeconds',
];
const BANDWIDTH_QUANTITIES = USAGE_QUANTITIES.filter((q) => !ALLOCATION_QUANTITIES.includes(q));

const STALL_MS = 120_000;
// The runai-collector's defaults, set explicitly: the bound below is derived from them.
const WATCH_RELIST_INTERVALS = 4;
const WATCH_STALE_INTERVALS = 6;

/**
 * stale-watch: every watch of the fake API hangs for STALL_MS from 10 % of the scenario (open, silent: no
 * event, no bookmark, no end; watches opened meanwhile hang too), while lists keep answering the current
 * state and pods start and end. Then the hung watches are ended and watching works again.
 *
 * What the pipeline should bill, and so what this trial asserts:
 * - runai-collector: its periodic relist (every WATCH_RELIST_INTERVALS intervals) proves its cache fresh
 *   (so it stays ready and samples every grid point) and finds each end within that period. The grid points
 *   sampled between a pod's real end and the relist that showed it were published as Running and cannot be
 *   taken back: that is the allowed over-billing, N = WATCH_RELIST_INTERVALS + 1 = 5 intervals (10 s at
 *   2 s): a relist at most 4 intervals after the end (plus its list time), and the sample taken just before
 *   it covers up to one more interval (the collector's own stale-watch test uses the same bound). It is
 *   measured, not guessed: the pod-allocation topic is read, each sample id counted once (the first copy
 *   in partition order, as the aggregator counts it), and what each pod was billed after its real end is
 *   (a) at most N intervals, else a difference per pod, and (b) added to the truth, so the allocation
 *   quantities compare exactly per invoice key and window. A pod that starts during the stall is seen at a
 *   relist and its missed grid points filled from its start: no allowance, exact. Only pods that ended
 *   during the stall get an allowance; any other pod billed past its end differs.
 * - bandwidth-collector: the same relist (WATCH_RELIST_INTERVALS; before, the kit's fixed 60 s, 30 intervals
 *   here), and until it attributes a GPU's traffic by the stale pod statuses: to a pod that ended (instead
 *   of `unallocated`), to `unallocated` for a pod that started (not in its cache yet). The bytes of each GPU
 *   are all billed, only to which of those keys is open. So for the bandwidth quantities, the windows
 *   overlapping [edge, edge + N intervals) (capped at the stall's end + 1 interval) of a GPU pod's start or
 *   end during the stall compare summed over every key of that GPU type; every other window compares per
 *   key, exactly.
 */
function staleWatch(): Trial {
  const boundMs = (WATCH_RELIST_INTERVALS + 1) * intervalMs;
  const violations = { pods: 0 };
  return {
    name: 'stale-watch',
    description: `every Kubernetes watch hangs silently for ${STALL_MS} ms (lists answer) while pods start and end`,
    pipeline: {
      env: {
        'runai-collector': {
          WATCH_RELIST_INTERVALS: String(WATCH_RELIST_INTERVALS),
          WATCH_STALE_INTERVALS: String(WATCH_STALE_INTERVALS),
        },
        'bandwidth-collector': {
          WATCH_RELIST_INTERVALS: String(WATCH_RELIST_INTERVALS),
          WATCH_STALE_INTERVALS: String(WATCH_STALE_INTERVALS),
        },
      },
    },
    inject: async (pipeline) => {
      const stallFrom = at(pipeline, 0.1);
      await sleepUntil(stallFrom);
      pipeline.simulator.stallWatches();
      const hung = pipeline.simulator.openWatches();
      say(
        `  watches stalled at +${Math.round((Date.now() - pipeline.range.fromMs) / 1000)} s (${hung} open)`,
      );
      await sleep(STALL_MS);
      const stallTo = Date.now();
      pipeline.simulator.resumeWatches();
      say(
        `  watches resumed at +${Math.round((stallTo - pipeline.range.fromMs) / 1000)} s (hung ones ended)`,
      );
      const { startMs, model } = pipeline.simulator;
      const inStall = (ms: number) => ms >= stallFrom && ms < stallTo;
      const affected = model.pods
        .filter((p) => p.gpus > 0)
        .flatMap((p) =>
          [startMs + p.runStart, startMs + p.runEnd].filter(inStall).map((edge) => ({
            gpuType: p.gpuType,
            fromMs: edge,
            toMs: Math.min(edge + boundMs, stallTo + intervalMs),
          })),
        );
      const rekey = (key: InvoiceKey, row: UsageRow): InvoiceKey =>
        affected.some(
          (a) => a.gpuType === key.gpuType && row.windowStartMs < a.toMs && row.windowEndMs > a.fromMs,
        )
          ? {
              subject: '(any: watch stalled)',
              project: '',
              department: '',
              workloadType: '',
              gpuType: key.gpuType,
            }
          : key;
      let reported = false;
      const compare = async (): Promise<CompareOptions[]> => {
        const first = new Map<string, PodAllocationSample>();
        for (const { value } of await podSamples(pipeline))
          if (!first.has(value.id)) first.set(value.id, value);
        const excess: UsageRow[] = [];
        const lines: string[] = [];
        violations.pods = 0;
        for (const p of model.pods) {
          const endMs = startMs + p.runEnd;
          if (!Number.isFinite(endMs)) continue;
          let billedAfterMs = 0;
          for (const sample of first.values()) {
            const from = Math.max(Number(sample.spanStartMs), endMs);
            const to = Number(sample.spanEndMs);
            if (sample.podUid !== p.uid || to <= from) continue;
            billedAfterMs += to - from;
            // Only a pod that ended during the stall may be billed past its end; the others must match.
            if (!inStall(endMs)) continue;
            for (let ws = Math.floor(from / windowMs) * windowMs; ws < to; ws += windowMs) {
              const ms = Math.min(to, ws + windowMs) - Math.max(from, ws);
              if (ms <= 0 || ws < pipeline.range.fromMs || ws + windowMs > pipeline.range.toMs) continue;
              excess.push({
                subject: p.subject ?? 'unattributed',
                project: p.project,
                department: p.department,
                workloadType: p.workloadType,
                gpuType: p.gpuType,
                windowStartMs: ws,
                windowEndMs: ws + windowMs,
                gpuAllocationSeconds: (p.gpus * ms) / 1000,
                gpuMemoryAllocatedByteSeconds: (p.gpuMemoryBytes * ms) / 1000,
                cpuCoreSeconds: (p.cpuCores * ms) / 1000,
                memoryByteSeconds: (p.memoryBytes * ms) / 1000,
              });
            }
          }
          const over = billedAfterMs > boundMs;
          if (over) violations.pods += 1;
          if (inStall(endMs) || billedAfterMs > 0)
            lines.push(
              `    ${p.namespace}/${p.pod.name}: ended at +${Math.round((endMs - pipeline.range.fromMs) / 100) / 10} s` +
                `${inStall(endMs) ? ' (in the stall)' : ''}, billed ${billedAfterMs} ms past its end` +
                ` (${(billedAfterMs / intervalMs).toFixed(2)} intervals; bound ${boundMs} ms)${over ? ' OVER THE BOUND' : ''}`,
            );
        }
        if (!reported || violations.pods > 0) {
          say(`  runai-collector billing past each pod's end (first copy of each sample id):`);
          for (const line of lines) say(line);
          reported = true;
        }
        return [
          { truth: [...pipeline.truth(), ...excess], quantities: ALLOCATION_QUANTITIES },
          { quantities: BANDWIDTH_QUANTITIES, rekey },
        ];
      };
      return {
        faults: 1,
        compare,
        check: async () => {
          // A stall that hung nothing would show nothing: it must have caught the collectors' watches.
          if (hung === 0) say('  no watch was open when the stall began: the trial tested nothing');
          return violations.pods + (hung === 0 ? 1 : 0);
        },
      };
    },
  };
}

/**
 * registry-outage: the usage-aggregator is killed and cold-started (empty schema cache) through a proxy of
 * the schema registry (test/pipeline/registry-proxy.ts: the shared Apicurio keeps its schemas in memory, so
 * stopping it would be lost storage for every user of the stack, not an outage). Its start-up registrations
 * pass; from its first look-up of a writer schema by id the registry is down for `outage-ms`: the first
 * half answered 404 by the gateway in front of it (what an ingress answers with no ready backend: a client
 * cannot tell it from an unknown id without a control look-up), the second half connections reset. Then
 * it is back with every schema. Nothing may be dead-lettered (any record on the run's dead-letter topic is
 * a difference) and the invoice lines compare exactly.
 */
const registryOutage: Trial = {
  name: 'registry-outage',
  description: `schema registry down (404 from its gateway, then refused) for ${outageMs} ms at a usage-aggregator cold start`,
  inject: async (pipeline) => {
    const proxy = new RegistryProxy(stackEnv.SCHEMA_REGISTRY_URL!);
    const proxyUrl = await proxy.start();
    await sleepUntil(at(pipeline, 1 / 3));
    proxy.arm('not-found');
    await pipeline.restart('usage-aggregator', 0, { env: { SCHEMA_REGISTRY_URL: proxyUrl } });
    say('  usage-aggregator[0] killed and restarted through the registry proxy (cold cache)');
    // The restarted aggregator registers its subjects, then looks up its first writer schema; on this
    // loaded machine a cold start took up to ~10 s. 90 s is the pipeline's own start-up allowance.
    const armedBy = Date.now() + 90_000;
    while (proxy.armedAtMs === undefined && Date.now() < armedBy) await sleep(100);
    if (proxy.armedAtMs === undefined) {
      await proxy.close();
      throw new Error('the restarted aggregator never looked a schema up: the outage never began');
    }
    say(`  registry down (404) from the first look-up, ${proxy.armedAtMs - pipeline.range.fromMs} ms in`);
    await sleep(outageMs / 2);
    proxy.set('refused');
    say('  registry down (connections reset)');
    await sleep(outageMs / 2);
    proxy.set('up');
    say(`  registry back after ${Date.now() - proxy.armedAtMs} ms`);
    return {
      faults: 1,
      check: async () => {
        const { answered, lookups } = proxy;
        const dead = await recordsOn(pipeline, pipeline.topics.deadLetters);
        say(
          `  registry proxy: ${lookups} look-ups by id; answered ${answered.up} passed, ${answered['not-found']} 404, ` +
            `${answered.refused} reset; ${dead} records dead-lettered (allowed: 0)`,
        );
        await proxy.close();
        return dead;
      },
    };
  },
};

const BIG = 100_000;
const big = (fill: string) => fill.repeat(BIG);
const collectorDeadLetters = `usage.collector-dead-letters.faults-${randomUUID().slice(0, 8)}`;

/**
 * oversized-annotations: one tenant's GPU pod carries 100 KB annotations that flow into every sample (`user`,
 * `workloadId`), a 100 KB one that does not, and a 100 KB `runai/queue` label (flows into samples; a real API
 * server refuses label values over 63 characters, a fake one does not, and a collector must not rely on
 * it). Before issue 13's fixes such samples (300 KB each, 500 to a send) stalled their partition on
 * MESSAGE_TOO_LARGE. Now string fields are cut to SAMPLE_MAX_STRING_LENGTH (1024) with a marker and a sample
 * that still does not fit is dead-lettered. None of these fields is an identity field (sample-publisher.ts
 * SAMPLE_IDENTITY_FIELDS) nor part of an invoice key, so each capped sample is 3 KB, fits, and bills as
 * before: the truth is the plain scenario's, every tenant (that one included) exactly; nothing may reach the
 * collectors' dead-letter topic; and the pod's published samples must show the cut (else it tested nothing).
 */
const oversizedAnnotations: Trial = {
  name: 'oversized-annotations',
  description: `a tenant pod with ${BIG / 1000} KB annotations and a ${BIG / 1000} KB label flowing into its samples`,
  pipeline: {
    env: {
      'runai-collector': { COLLECTOR_DEAD_LETTERS_TOPIC: collectorDeadLetters },
      'bandwidth-collector': { COLLECTOR_DEAD_LETTERS_TOPIC: collectorDeadLetters },
    },
  },
  scenario: (scenario) => {
    const pod = bigPod(scenario);
    return {
      ...scenario,
      pods: scenario.pods.map((p) =>
        p === pod
          ? {
              ...p,
              annotations: {
                ...p.annotations,
                user: big('u'),
                workloadId: big('w'),
                'example.com/notes': big('n'),
              },
              labels: { ...p.labels, 'runai/queue': big('q') },
            }
          : p,
      ),
    };
  },
  inject: async (pipeline) => {
    const pod = bigPod(pipeline.simulator.model.scenario);
    say(
      `  ${pod.name}: annotations user, workloadId, example.com/notes and label runai/queue of ${BIG} characters`,
    );
    return {
      faults: 1,
      check: async () => {
        const dead = await recordsOn(pipeline, collectorDeadLetters);
        const samples = (await podSamples(pipeline))
          .map((r) => r.value)
          .filter((s) => s.podName === pod.name);
        const marker = `…[truncated from ${BIG} chars]`;
        const cut = samples.filter(
          (s) =>
            s.user.length <= 1024 &&
            s.user.endsWith(marker) &&
            s.queue.endsWith(marker) &&
            s.workloadId.endsWith(marker),
        );
        say(
          `  ${samples.length} samples of ${pod.name} published, ${cut.length} with user, workloadId and queue cut to ` +
            `1024 characters; ${dead} records on ${collectorDeadLetters} (allowed: 0)`,
        );
        const untested = samples.length === 0 || cut.length !== samples.length ? 1 : 0;
        return dead + untested;
      },
    };
  },
};

/** The GPU pod with a project label that runs longest: the tenant with the big metadata. */
function bigPod(scenario: Scenario): Scenario['pods'][number] {
  const pod = buildModel(scenario)
    .pods.filter((p) => p.gpus > 0 && !p.pod.omit.includes('project'))
    .sort((a, b) => Math.min(b.runEnd, 1e15) - b.runStart - (Math.min(a.runEnd, 1e15) - a.runStart))[0];
  if (!pod) throw new Error(`no GPU pod with a project in ${scenarioFile}`);
  return pod.pod;
}

/**
 * A DCGM page `render`ed for `node`, forged: every reading x1000 (+1e9), and one more GPU, which does not
 * exist, mapped to the victim pod. Accepted, it would bill the victim traffic it never made.
 */
function forgedPage(
  model: Pipeline['simulator']['model'],
  node: string,
  victim: { namespace: string; name: string },
) {
  return (offsetMs: number) => {
    const page = renderMetrics(model, node, offsetMs) ?? '';
    const out: string[] = [];
    for (const line of page.split('\n')) {
      const m = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
      if (!m) {
        out.push(line);
        continue;
      }
      const [, name, labels, value] = m;
      const inflated = Number(value) * 1000 + 1e9;
      out.push(`${name}{${labels}} ${inflated}`);
      if (/gpu="0"/.test(labels!)) {
        const fake = labels!
          .replace(/UUID="[^"]*"/, 'UUID="GPU-0f0f0f0f-dead-beef-0000-forged000000"')
          .replace(/gpu="0"/, 'gpu="99"')
          .replace(/device="nvidia0"/, 'device="nvidia99"')
          .replace(/,container="[^"]*",namespace="[^"]*",pod="[^"]*"/, '');
        out.push(
          `${name}{${fake},container="main",namespace="${victim.namespace}",pod="${victim.name}"} ${inflated}`,
        );
      }
    }
    return out.join('\n');
  };
}

/**
 * forged-exporter: two exporters that must not bill anything. (1) A tenant's pod in its own namespace
 * `runai-mallory`, labelled app=nvidia-dcgm-exporter with prometheus.io port/path annotations, bound to the
 * victim's node, serving the victim node's page forged (every reading x1000, plus a GPU that does not
 * exist mapped to the victim pod): discovery takes exporters only from DCGM_EXPORTER_NAMESPACE
 * (gpu-operator), so it must never even be requested. (2) An exporter in gpu-operator bound to another node
 * serving the same forged page, whose GPUs say they are on the victim's node: its readings count only for
 * its own node, so all of them are dropped (rejected_readings{reason="foreign_node"}, logged). The bandwidth
 * collectors run on discovery alone here (no DCGM_ENDPOINTS, which are taken as they are), so every
 * exporter, the genuine ones too, goes through these checks. Truth: the plain scenario, exactly.
 */
const forgedExporter: Trial = {
  name: 'forged-exporter',
  description:
    "a tenant's pod posing as a DCGM exporter, and an operator exporter reporting another node's GPUs",
  pipeline: { env: { 'bandwidth-collector': { DCGM_ENDPOINTS: '' } } },
  inject: async (pipeline) => {
    const { simulator } = pipeline;
    const victim = bigPod(simulator.model.scenario);
    const facts = simulator.model.pods.find((p) => p.pod === victim)!;
    const victimNode = facts.node.name;
    const otherNode = simulator.model.scenario.nodes.find((n) => n.name !== victimNode)?.name ?? 'node-rogue';
    const port = Number(new URL(simulator.dcgmBaseUrl).port);
    const render = forgedPage(simulator.model, victimNode, { namespace: facts.namespace, name: victim.name });
    const exporterPod = (namespace: string, name: string, node: string, path: string): K8sObject => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace,
        uid: randomUUID(),
        creationTimestamp: new Date(simulator.startMs).toISOString(),
        labels: { app: 'nvidia-dcgm-exporter' },
        annotations: {
          'prometheus.io/scrape': 'true',
          'prometheus.io/port': String(port),
          'prometheus.io/path': path,
        },
      },
      spec: {
        schedulerName: 'default-scheduler',
        nodeName: node,
        containers: [
          {
            name: 'exporter',
            image: 'example.com/exporter:1',
            ports: [{ name: 'metrics', containerPort: port }],
          },
        ],
      },
      status: {
        phase: 'Running',
        hostIP: '127.0.0.1',
        podIP: '127.0.0.1',
        startTime: new Date(simulator.startMs).toISOString(),
      },
    });
    const tenantPath = simulator.serveDcgmPage('mallory', render);
    const roguePath = simulator.serveDcgmPage('rogue', render);
    await simulator.putObject(exporterPod('runai-mallory', 'dcgm-exporter', victimNode, tenantPath));
    await simulator.putObject(
      exporterPod('gpu-operator', 'nvidia-dcgm-exporter-rogue', otherNode, roguePath),
    );
    say(
      `  runai-mallory/dcgm-exporter on ${victimNode} and gpu-operator/nvidia-dcgm-exporter-rogue on ${otherNode}` +
        ` serve ${victimNode}'s page forged for ${facts.namespace}/${victim.name}`,
    );
    return {
      faults: 2,
      check: async () => {
        const tenant = simulator.dcgmRequests(tenantPath);
        const rogue = simulator.dcgmRequests(roguePath);
        const rejected = pipeline.services['bandwidth-collector']!.reduce(
          (sum, p) => sum + p.output.filter((line) => /another node/.test(line)).length,
          0,
        );
        say(
          `  tenant exporter scraped ${tenant} times (allowed: 0); rogue exporter scraped ${rogue} times, ` +
            `${rejected} log lines rejecting its readings`,
        );
        // The rogue one must have been scraped and rejected, else the node check was not exercised.
        return (tenant > 0 ? 1 : 0) + (rogue === 0 || rejected === 0 ? 1 : 0);
      },
    };
  },
};

const trials: Trial[] = [
  ...[
    'usage-aggregator',
    'clickhouse-sink',
    'openmeter-forwarder',
    'runai-collector',
    'bandwidth-collector',
  ].map(killTrial),
  stackOutage('broker-down', 'kafka.sh', 1 / 3, brokerDownMs),
  stackOutage('clickhouse-down', 'clickhouse.sh', 0.1, outageMs),
  {
    name: 'openmeter-errors',
    description: `OpenMeter answering 429/500 for ${outageMs} ms`,
    inject: async (pipeline) => {
      await sleepUntil(at(pipeline, 0.1));
      const until = Date.now() + outageMs;
      let injected = 0;
      while (Date.now() < until) {
        if (pipeline.openMeter.pendingFaults < 5) {
          pipeline.openMeter.failNext(
            ...Array.from({ length: 5 }, (): Fault =>
              random() < 0.5
                ? { kind: 'status', status: 429, retryAfterSeconds: 1 }
                : { kind: 'status', status: 500 },
            ),
          );
          injected += 5;
        }
        await sleep(100);
      }
      pipeline.openMeter.clearFaults();
      return { faults: injected };
    },
  },
  {
    name: 'collector-outage',
    description: `every runai-collector replica down ${collectorDownMs} ms, then restarted (backfill)`,
    // A pod deleted while no replica watches is gone before any collector could see how it ended: nothing
    // can bill its time after the last sample before the outage (runai-collector README, "Limits"). So in
    // this trial a pod the scenario deletes during the outage stays, finished, until after it, as
    // Kubernetes keeps a finished pod until something deletes it; its end is then backfilled like the rest.
    scenario: (scenario) => {
      const from = scenario.durationMs / 3 - 2 * intervalMs;
      const to = scenario.durationMs / 3 + collectorDownMs + 2 * intervalMs;
      return {
        ...scenario,
        pods: scenario.pods.map(({ deletedMs, ...pod }) =>
          deletedMs !== undefined && (deletedMs < from || deletedMs > to) ? { ...pod, deletedMs } : pod,
        ),
      };
    },
    inject: async (pipeline) => {
      await sleepUntil(at(pipeline, 1 / 3));
      const replicas = pipeline.services['runai-collector']!;
      await Promise.all(
        replicas.map((_, index) => pipeline.restart('runai-collector', index, { downMs: collectorDownMs })),
      );
      return { faults: replicas.length };
    },
  },
  {
    name: 'openmeter-no-dedupe',
    description:
      'OpenMeter without dedupe: a second forwarder joins mid-stream, both restart gracefully, one leaves',
    inject: async (pipeline) => {
      // A self-hosted OpenMeter's default (the fake's too): every event accepted twice is billed twice.
      pipeline.openMeter.setDedupe('off');
      const service = 'openmeter-forwarder';
      await sleepUntil(at(pipeline, 0.15));
      const second = addReplica(pipeline, service);
      say(`  ${service}[${second}] started (the group rebalances)`);
      await sleepUntil(at(pipeline, 0.35));
      await gracefulRestart(pipeline, service, 0);
      say(`  ${service}[0] restarted with SIGTERM`);
      await sleepUntil(at(pipeline, 0.55));
      await gracefulRestart(pipeline, service, second);
      say(`  ${service}[${second}] restarted with SIGTERM`);
      await sleepUntil(at(pipeline, 0.75));
      await pipeline.services[service]![second]!.kill('SIGTERM');
      say(`  ${service}[${second}] stopped with SIGTERM (scaled down)`);
      return { faults: 4, check: duplicatesReceived(pipeline) };
    },
  },
  {
    name: 'openmeter-400-storm',
    description: `OpenMeter answering 400 to every request for ${OPENMETER_STORM_MS} ms`,
    inject: async (pipeline) => {
      await sleepUntil(at(pipeline, 0.2));
      pipeline.openMeter.failAll({ kind: 'status', status: 400 });
      await sleep(OPENMETER_STORM_MS);
      pipeline.openMeter.clearFaults();
      say(`  OpenMeter answered 400 to everything for ${OPENMETER_STORM_MS} ms`);
      return {
        faults: 1,
        check: async () => {
          // An outage is never a dead letter: the breaker holds rejections nothing else in the batch proves.
          const dead = await forwarderDeadLetters(pipeline);
          say(`  ${dead} events dead-lettered by the forwarder (the breaker's threshold: 0)`);
          const duplicates = await duplicatesReceived(pipeline)();
          return dead + duplicates;
        },
      };
    },
  },
  configRollout,
  relabel,
  {
    name: 'clock-skew',
    description: "one runai-collector replica's clock 1 h ahead (libfaketime)",
    pipeline: {
      replicaEnv: {
        'runai-collector': [
          undefined,
          // Timers run on the monotonic clock: leave it real, so only the wall clock is skewed.
          { LD_PRELOAD: LIBFAKETIME, FAKETIME: '+1h', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
        ],
      },
    },
    inject: async () => {
      if (!existsSync(LIBFAKETIME)) throw new Error(`${LIBFAKETIME} missing: apt-get install faketime`);
      return { faults: 1 };
    },
  },
  {
    name: 'partition-expansion',
    description: 'both raw topics expanded mid-run',
    inject: async (pipeline) => {
      await sleepUntil(at(pipeline, 0.5));
      const admin = pipeline.kafka.admin();
      await admin.connect();
      try {
        const topics = [pipeline.topics.podAllocations, pipeline.topics.bandwidthSamples];
        const metadata = await admin.fetchTopicMetadata({ topics });
        const count = Math.max(...metadata.topics.map((t) => t.partitions.length)) * 2;
        await admin.createPartitions({ topicPartitions: topics.map((topic) => ({ topic, count })) });
        say(`  ${topics.join(', ')}: expanded to ${count} partitions`);
      } finally {
        await admin.disconnect();
      }
      return { faults: 1 };
    },
  },
  staleWatch(),
  registryOutage,
  oversizedAnnotations,
  forgedExporter,
  {
    name: 'zombie',
    description: 'two aggregators, one SIGSTOPped past the session timeout, then SIGCONTed',
    pipeline: {
      replicas: { 'runai-collector': 2, 'bandwidth-collector': 2, 'usage-aggregator': 2 },
      env: { 'usage-aggregator': { SESSION_TIMEOUT_MS: String(ZOMBIE_SESSION_TIMEOUT_MS) } },
    },
    inject: async (pipeline) => {
      await sleepUntil(at(pipeline, 1 / 3));
      pipeline.signal('usage-aggregator', 0, 'SIGSTOP');
      // Well past the session timeout, so the other instance has taken the tasks and committed as owner.
      await sleep(3 * ZOMBIE_SESSION_TIMEOUT_MS);
      pipeline.signal('usage-aggregator', 0, 'SIGCONT');
      return { faults: 1 };
    },
  },
];

/** The service-level fault test that restarts the shared broker (vitest, services/*\/test/faults). */
const BROKER_RESTART_BACKLOG = 'broker-restart-backlog';
async function brokerRestartBacklog(): Promise<TrialResult> {
  const child = spawn('npx', ['vitest', 'run', '-c', 'test/faults/vitest.config.ts'], {
    cwd: REPO_ROOT,
    stdio: 'inherit',
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { name: BROKER_RESTART_BACKLOG, faults: 1, differences: code === 0 ? 0 : 1 };
}

/** `--only` entries name trials exactly or by prefix (`kill`); one that matches nothing is a typo. */
function selectTrials(names: string[], only: string | undefined): string[] {
  if (only === undefined) return names;
  const wanted = only
    .split(',')
    .map((word) => word.trim())
    .filter(Boolean);
  const unknown = wanted.filter((word) => !names.some((name) => name === word || name.startsWith(word)));
  if (unknown.length > 0)
    throw new Error(`--only: no trial named ${unknown.join(', ')} (trials: ${names.join(', ')})`);
  return names.filter((name) => wanted.some((word) => name === word || name.startsWith(word)));
}

const selected = selectTrials([...trials.map((t) => t.name), BROKER_RESTART_BACKLOG], args.only);
const scenario = loadScenario(scenarioFile);
say(`faults: ${selected.join(', ')} on ${scenarioFile} (seed ${args.seed})`);
const results: TrialResult[] = [];
for (const name of selected) {
  const trial = trials.find((t) => t.name === name);
  say(`== ${name}: ${trial?.description ?? 'broker restart while the aggregator works through a backlog'}`);
  let result: TrialResult;
  try {
    result = trial
      ? await runTrial(trial, trial.scenario ? trial.scenario(scenario) : scenario)
      : await brokerRestartBacklog();
  } catch (error) {
    // A trial that cannot run has not shown the pipeline right: it counts as a difference.
    say(`  trial ${name} failed to run: ${(error as Error).stack ?? String(error)}`);
    result = { name, faults: 0, differences: 1 };
  }
  results.push(result);
  say(`trial ${name}: ${result.differences} differences`);
}

const total = results.reduce((sum, r) => sum + r.differences, 0);
const failed = results.filter((r) => r.differences > 0).map((r) => r.name);
say(
  `\nfaults: ${results.length} trials, ${results.length - failed.length} passed, ${failed.length} failed` +
    `${failed.length > 0 ? ` (${failed.join(', ')})` : ''}, ` +
    `${results.reduce((s, r) => s + r.faults, 0)} faults injected (seed ${args.seed})`,
);
say(`faults: ${total} differences`);
process.exitCode = total === 0 ? 0 : 1;
