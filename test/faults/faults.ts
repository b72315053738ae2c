/**
 * `npm run faults [-- --scenario F --kills-per-service N --outage-ms N --broker-down-ms N --only word]`:
 * the long fault suite, outside the default test run. Each trial plays the scenario through the whole
 * pipeline while injecting one kind of fault, then compares ground truth, usage topic, ClickHouse and
 * OpenMeter totals (the fault-free result is the ground truth, which the fault-free `verify` run matches).
 * Then the service-level fault tests that restart shared services (the `*.faults.ts` files under
 * services/<name>/test/faults, run by vitest). Prints every trial and the differences found.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { loadScenario } from '@gpu-meter/simulator';
import { renderTable } from '../pipeline/compare.js';
import type { Fault } from '../support/fake-openmeter.js';
import { startPipeline, type Pipeline } from '../pipeline/pipeline.js';
import { endpointsFromEnvironment, ENDPOINT_KEYS, REPO_ROOT } from '../support/stack-env.js';

const { values: args } = parseArgs({
  options: {
    scenario: { type: 'string', default: `${REPO_ROOT}test/scenarios/whole-gpus.json` },
    'kills-per-service': { type: 'string', default: '3' },
    'outage-ms': { type: 'string', default: '60000' },
    'broker-down-ms': { type: 'string', default: '30000' },
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
const killsPerService = Number(args['kills-per-service']);
const only = args.only?.split(',');

// A small seeded generator so a failing run can be repeated with --seed.
let state = Number(args.seed) % 2_147_483_647 || 1;
const random = () => (state = (state * 48_271) % 2_147_483_647) / 2_147_483_647;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (line: string) => process.stdout.write(`${line}\n`);

interface TrialResult {
  name: string;
  faults: number;
  differences: number;
  table: string;
}

/** Runs one trial: pipeline up, `inject` during the scenario, then compare once everything settled. */
async function trial(
  name: string,
  inject: (pipeline: Pipeline, endMs: number) => Promise<number>,
): Promise<TrialResult> {
  const scenario = loadScenario(scenarioFile);
  const pipeline = await startPipeline({
    scenario,
    stackEnv,
    windowMs,
    intervalMs,
    // Two replicas of each collector: DCGM gauges have no history, so a scrape missed while the only
    // bandwidth collector is down cannot be backfilled. Replicas publish the same ids; the aggregator dedupes.
    replicas: { 'runai-collector': 2, 'bandwidth-collector': 2 },
    serviceEnv: { LOG_LEVEL: 'info' },
  });
  try {
    const faults = await inject(pipeline, pipeline.range.toMs);
    const settleAt = pipeline.range.toMs + 2 * intervalMs + 5_000;
    while (Date.now() < settleAt) await sleep(500);
    const deadline = Date.now() + 180_000;
    let result = await pipeline.compare();
    while (!result.ok && Date.now() < deadline) {
      await sleep(3_000);
      result = await pipeline.compare();
    }
    const differences = result.rows.filter((row) => !row.ok).length + (result.rows.length === 0 ? 1 : 0);
    let table = renderTable(result.rows);
    if (differences > 0) table += `\n${await diagnostics(pipeline)}`;
    return { name, faults, differences, table };
  } finally {
    await pipeline.stop();
  }
}

/** What a failed trial leaves to look at: late and dead-lettered records, and each process's errors. */
async function diagnostics(pipeline: Pipeline): Promise<string> {
  const kafka = new Kafka({
    clientId: 'faults',
    brokers: stackEnv.KAFKA_BROKERS!.split(','),
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
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
function killTrial(service: string) {
  return async (pipeline: Pipeline, endMs: number) => {
    const startMs = pipeline.range.fromMs;
    const moments = Array.from(
      { length: killsPerService },
      () => startMs + random() * (endMs - startMs),
    ).sort();
    for (const moment of moments) {
      await sleep(Math.max(0, moment - Date.now()));
      const replicas = pipeline.services[service]!.length;
      await pipeline.restart(service, Math.floor(random() * replicas), Math.floor(random() * 2000));
      say(`  kill -9 ${service} at +${Math.round((Date.now() - startMs) / 1000)} s`);
    }
    return moments.length;
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

const trials: Array<[string, (pipeline: Pipeline, endMs: number) => Promise<number>]> = [
  ...[
    'usage-aggregator',
    'clickhouse-sink',
    'openmeter-forwarder',
    'runai-collector',
    'bandwidth-collector',
  ].map(
    (service) =>
      [`kill -9 ${service}`, killTrial(service)] as [string, (p: Pipeline, e: number) => Promise<number>],
  ),
  [
    `broker down for ${brokerDownMs} ms mid-run`,
    async (pipeline) => {
      await sleep(
        Math.max(0, pipeline.range.fromMs + (pipeline.range.toMs - pipeline.range.fromMs) / 3 - Date.now()),
      );
      await stackScript('kafka.sh', 'stop');
      await sleep(brokerDownMs);
      await stackScript('kafka.sh', 'start');
      return 1;
    },
  ],
  [
    `ClickHouse down for ${outageMs} ms`,
    async (pipeline) => {
      await sleep(Math.max(0, pipeline.range.fromMs + 10_000 - Date.now()));
      await stackScript('clickhouse.sh', 'stop');
      await sleep(outageMs);
      await stackScript('clickhouse.sh', 'start');
      return 1;
    },
  ],
  [
    `OpenMeter answering 429/500 for ${outageMs} ms`,
    async (pipeline) => {
      await sleep(Math.max(0, pipeline.range.fromMs + 10_000 - Date.now()));
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
      return injected;
    },
  ],
];

const results: TrialResult[] = [];
for (const [name, inject] of trials) {
  if (only && !only.some((word) => name.includes(word))) continue;
  say(`trial: ${name}`);
  const result = await trial(name, inject);
  results.push(result);
  say(`  faults injected: ${result.faults}, differences: ${result.differences}`);
  if (result.differences > 0) say(result.table);
}
// Service-level fault tests that restart shared services (vitest files under services/*/test/faults).
if (!only || only.some((word) => 'aggregator broker restart mid-backlog'.includes(word))) {
  say('trial: aggregator broker restart mid-backlog (services/usage-aggregator/test/faults)');
  const child = spawn('npx', ['vitest', 'run', '-c', 'test/faults/vitest.config.ts'], {
    cwd: REPO_ROOT,
    stdio: 'inherit',
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  const differences = code === 0 ? 0 : 1;
  results.push({ name: 'aggregator broker restart mid-backlog', faults: 1, differences, table: '' });
  say(`  faults injected: 1, differences: ${differences}`);
}

const total = results.reduce((sum, r) => sum + r.differences, 0);
say(
  `\nfaults: ${results.length} trials, ${results.reduce((s, r) => s + r.faults, 0)} faults injected, ${total} differences (seed ${args.seed})`,
);
process.exitCode = total === 0 ? 0 : 1;
