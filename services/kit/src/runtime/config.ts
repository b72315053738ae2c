import { env, schemas } from '../config/env.js';

/** The ops server (/healthz, /readyz, /metrics) and the log level, alike in every service. */
export const opsConfigSpec = {
  opsPort: env(
    'OPS_PORT',
    schemas.int(9464, 0, 65535),
    'Port of /healthz, /readyz and /metrics (0 = any free port).',
  ),
  opsHost: env('OPS_HOST', schemas.nonEmpty('0.0.0.0'), 'Address the ops server listens on.'),
  logLevel: env(
    'LOG_LEVEL',
    schemas.oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    'Log level.',
  ),
} as const;
