/**
 * `npm run verify -- --scenario FILE [--window-ms N] [--interval-ms N] [--timeout-ms N]`
 *
 * Plays a scenario through the whole pipeline (simulator, both collectors, aggregator, ClickHouse sink,
 * OpenMeter forwarder against the fake OpenMeter) on the local stack (.stack/env) or the services named in
 * the environment, waits until the last window is out, and compares ground truth, usage topic, ClickHouse and
 * OpenMeter per invoice line (subject, project, department, workload type, GPU type) and window: prints the
 * per-key summary and the differing lines. Exit code 1 on any difference.
 */
import { parseArgs } from 'node:util';
import { loadScenario } from '@gpu-meter/simulator';
import { endpointsFromEnvironment, ENDPOINT_KEYS } from '../support/stack-env.js';
import { renderComparison } from './compare.js';
import { startPipeline } from './pipeline.js';

export async function verifyScenario(options: {
  scenarioFile: string;
  windowMs: number;
  intervalMs: number;
  timeoutMs: number;
  stackEnv: Record<string, string>;
  log: (line: string) => void;
}): Promise<{ ok: boolean; differences: number; table: string }> {
  const scenario = loadScenario(options.scenarioFile);
  const pipeline = await startPipeline({ ...options, scenario });
  try {
    // The last compared window closes after its end + grace (2 intervals); allow the sinks a moment more.
    const settleAt = pipeline.range.toMs + 2 * options.intervalMs + 2_000;
    options.log(`waiting ${Math.round((settleAt - Date.now()) / 1000)} s for the scenario to play out`);
    while (Date.now() < settleAt) await sleep(500);
    const deadline = Date.now() + options.timeoutMs;
    let result = await pipeline.compare();
    while (!result.ok && Date.now() < deadline) {
      await sleep(2_000);
      result = await pipeline.compare();
    }
    for (const [name, processes] of Object.entries(pipeline.services)) {
      for (const process of processes)
        if (!process.running) options.log(`${name} is not running:\n${process.tail()}`);
    }
    return { ok: result.ok, differences: result.differences, table: renderComparison(result.comparison) };
  } finally {
    await pipeline.stop();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string' },
      'window-ms': { type: 'string', default: '10000' },
      'interval-ms': { type: 'string', default: '2000' },
      'timeout-ms': { type: 'string', default: '60000' },
    },
  });
  if (!values.scenario)
    throw new Error('usage: npm run verify -- --scenario FILE [--window-ms N] [--interval-ms N]');
  const stackEnv = endpointsFromEnvironment();
  const missing = ENDPOINT_KEYS.filter((key) => !stackEnv[key]);
  if (missing.length > 0) throw new Error(`${missing.join(', ')} not set: run \`npm run stack:up\` first`);
  const { ok, differences, table } = await verifyScenario({
    scenarioFile: values.scenario,
    windowMs: Number(values['window-ms']),
    intervalMs: Number(values['interval-ms']),
    timeoutMs: Number(values['timeout-ms']),
    stackEnv,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(
    `${table}\n\n${ok ? 'verify: all sources agree' : `verify: DIFFERENCES FOUND (${differences})`}\n`,
  );
  process.exitCode = ok ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    process.stderr.write(`verify failed: ${(error as Error).message}\n`);
    process.exitCode = 2;
  });
}
