import { env, readConfig, schemas, type ConfigOf } from '@gpu-meter/kit/config';
import { kafkaConfigSpec } from '@gpu-meter/kit/kafka';

export const TOOL_NAME = 'gpu-meter-replay';

/** The Kafka connection as every service reads it (SASL, TLS, mTLS), and the log level of stderr lines. */
export const configSpec = {
  ...kafkaConfigSpec,
  logLevel: env(
    'LOG_LEVEL',
    schemas.oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'warn'),
    'Level of the log lines on stderr (the report goes to stdout).',
  ),
} as const;

export type ReplayConfig = ConfigOf<typeof configSpec>;

export function loadConfig(source: Record<string, string | undefined> = process.env): ReplayConfig {
  return readConfig(configSpec, source);
}
