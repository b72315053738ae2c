import { ConfigError, errorMessage } from '@gpu-meter/kit/contracts';
import { createLogger } from '@gpu-meter/kit/runtime';
import { createKafka } from '@gpu-meter/kit/kafka';
import { loadConfig, TOOL_NAME } from './config.js';
import { parseReplayArgs, USAGE, UsageError } from './options.js';
import { ReplayRefused, runReplay } from './replay.js';
import { formatReport } from './report.js';

// Exit codes: 0 done (or nothing to do), 1 refused or failed (nothing replayed by this run), 2 bad usage.
try {
  const command = parseReplayArgs(process.argv.slice(2));
  if (command === 'help') {
    process.stdout.write(`${USAGE}\n`);
  } else {
    const config = loadConfig();
    // The report is stdout; log lines (kafkajs included) go to stderr.
    const logger = createLogger(TOOL_NAME, config.logLevel, process.stderr);
    const kafka = createKafka(config, TOOL_NAME, logger);
    process.stdout.write(formatReport(await runReplay(kafka, command, logger)));
  }
} catch (error) {
  if (error instanceof UsageError) {
    process.stderr.write(`${error.message}\n\n${USAGE}\n`);
    process.exitCode = 2;
  } else if (error instanceof ReplayRefused) {
    process.stdout.write(formatReport(error.report));
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(
      `replay failed: ${error instanceof ConfigError ? error.message : errorMessage(error)}\n`,
    );
    process.exitCode = 1;
  }
}
