/**
 * `npm start`: the whole pipeline on this machine without Docker — the local stack, every service and the
 * simulator playing the demo scenario — with the default topic names and the `gpu_meter` database, so the
 * README's queries work as written. Ctrl-C stops everything.
 */
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { loadScenario } from '@gpu-meter/simulator';
import { endpointsFromEnvironment, REPO_ROOT } from '../support/stack-env.js';
import { startPipeline } from './pipeline.js';

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: `${REPO_ROOT}docker/demo-scenario.json` },
    'window-ms': { type: 'string', default: '30000' },
    'interval-ms': { type: 'string', default: '5000' },
  },
});

execFileSync('bash', ['test/stack/up.sh'], { cwd: REPO_ROOT, stdio: 'inherit' });
const stackEnv = endpointsFromEnvironment();
const say = (line: string) => process.stdout.write(`${line}\n`);
const pipeline = await startPipeline({
  scenario: loadScenario(values.scenario!),
  stackEnv,
  windowMs: Number(values['window-ms']),
  intervalMs: Number(values['interval-ms']),
  naming: 'run',
  log: say,
});

say(`
gpu-meter is running (scenario ${values.scenario}; sampling every ${values['interval-ms']} ms, windows of ${values['window-ms']} ms).

  Kafka            ${stackEnv.KAFKA_BROKERS}    topics: ${Object.values(pipeline.topics).join(', ')}
  Schema registry  ${stackEnv.SCHEMA_REGISTRY_URL}
  ClickHouse       ${stackEnv.CLICKHOUSE_URL}   database: ${pipeline.database}
  Fake Kubernetes  ${pipeline.simulator.k8sUrl}/api/v1/pods
  Fake OpenMeter   ${pipeline.openMeterUrl}/api/v1/events

After the first window closes, ask ClickHouse for the chargeback (see README, "Chargeback SQL"):

  clickhouse-client --port 19000 --query "SELECT month, subject, round(gpu_hours, 4) AS gpu_hours FROM gpu_meter.chargeback_subject_monthly ORDER BY month, subject"

Subscribe to the usage events (Avro, read_committed) with the example consumer:

  node --import tsx examples/usage-consumer.ts

Ctrl-C stops everything (the local stack keeps running: npm run stack:down).
`);

let stopping = false;
const stop = async () => {
  if (stopping) process.exit(1);
  stopping = true;
  say('stopping...');
  await pipeline.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
const reported = new Set<string>();
setInterval(() => {
  for (const [name, processes] of Object.entries(pipeline.services)) {
    for (const process of processes) {
      if (!process.running && !stopping && !reported.has(name)) {
        reported.add(name);
        say(`${name} stopped unexpectedly:\n${process.tail(20)}`);
      }
    }
  }
}, 5_000).unref();
await new Promise(() => undefined);
