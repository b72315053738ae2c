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

/** `scheme://user:password@` in any string: the password part is replaced, the rest kept for diagnosis. */
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^@/?#\s]*@/gi;

export function redactUrlCredentials(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1:[redacted]@');
}

/** A copy of a log argument with every string scrubbed (errors become pino's logged shape of them). */
function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactUrlCredentials(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return scrub({ ...value, type: value.name, message: value.message, stack: value.stack }, depth + 1);
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  // Plain objects only: a request or socket keeps its own shape for pino's serializers.
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrub(v, depth + 1)]));
}

export function createLogger(
  service: string,
  level: string = process.env.LOG_LEVEL ?? 'info',
  destination?: pino.DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
    name: service,
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    // A URL given as configuration (CLICKHOUSE_URL=http://user:password@host) or quoted in an error
    // message must not put its password in a log line; only lines that are written pay for the scrub.
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((arg) => scrub(arg)) as Parameters<typeof method>);
      },
    },
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}
