import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths pino blanks out wherever they appear in a log object. Secrets must never be logged; this is the
 * net under that rule for config objects, client options and HTTP headers that get logged by accident.
 */
export const REDACTED_PATHS = [
  'password',
  'token',
  'secret',
  '*.password',
  '*.token',
  '*.secret',
  '*.*.password',
  '*.kafkaSaslPassword',
  '*.clickhousePassword',
  '*.openmeterToken',
  '*.schemaRegistryPassword',
  'sasl',
  '*.sasl',
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  '*.*.headers.authorization',
  'req.headers.authorization',
  'config.kafkaSaslPassword',
  'config.clickhousePassword',
  'config.openmeterToken',
  'config.schemaRegistryPassword',
];

export function createLogger(
  service: string,
  level: string = process.env.LOG_LEVEL ?? 'info',
  destination?: pino.DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
    name: service,
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}
