import { parseArgs } from 'node:util';
import { loadScenario } from './scenario.js';
import { expectedSamples, expectedTotals } from './truth.js';

/**
 * `cli.ts truth --scenario F [--interval-ms N] [--window-ms N] [--from-ms N] [--to-ms N] [--start-ms N] [--samples]`
 * prints the scenario's ground truth as JSON.
 */
function int(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new Error(`--${name} must be a non-negative integer (got ${value})`);
  return Number(value);
}

function main(argv: string[]): void {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      scenario: { type: 'string' },
      'interval-ms': { type: 'string', default: '15000' },
      'window-ms': { type: 'string' },
      'from-ms': { type: 'string' },
      'to-ms': { type: 'string' },
      'start-ms': { type: 'string' },
      samples: { type: 'boolean', default: false },
    },
  });
  if (positionals[0] !== 'truth' || !values.scenario) {
    throw new Error(
      'usage: cli.ts truth --scenario FILE [--interval-ms N] [--window-ms N] [--from-ms N] [--to-ms N] [--start-ms N] [--samples]',
    );
  }
  const scenario = loadScenario(values.scenario);
  const options = {
    samplingIntervalMs: int('interval-ms', values['interval-ms'])!,
    fromMs: int('from-ms', values['from-ms']),
    toMs: int('to-ms', values['to-ms']),
    // Without a start anywhere, read the times as offsets (start 0): totals are the same for any grid-aligned start.
    startMs: int('start-ms', values['start-ms']) ?? scenario.startMs ?? 0,
  };
  const out = values.samples
    ? expectedSamples(scenario, options)
    : expectedTotals(scenario, { ...options, windowMs: int('window-ms', values['window-ms']) });
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

try {
  main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
}
