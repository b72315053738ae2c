import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { env, readConfig, schemas } from '@gpu-meter/kit/config';
import { createLogger, exitOnStartupError, Shutdown } from '@gpu-meter/kit/runtime';
import { FakeOpenMeter } from './fake-openmeter.js';

/**
 * The fake OpenMeter as a long-running process, for docker/compose.yaml's demo (the forwarder needs somewhere
 * to deliver): `node --import tsx test/support/fake-openmeter-main.ts`. It logs how many events it has accepted,
 * so `docker compose logs fake-openmeter` shows the forwarder's output arriving.
 */
export const fakeOpenMeterConfigSpec = {
  host: env(
    'FAKE_OPENMETER_HOST',
    schemas.nonEmpty('127.0.0.1'),
    'Address to listen on (0.0.0.0 in a container).',
  ),
  port: env('FAKE_OPENMETER_PORT', schemas.int(18888, 0, 65535), 'Port of POST /api/v1/events.'),
  token: env('FAKE_OPENMETER_TOKEN', schemas.optionalString(), 'Bearer token to require; none when unset.', {
    secret: true,
  }),
  reportIntervalMs: env('FAKE_OPENMETER_REPORT_MS', schemas.int(10_000, 100), 'How often to log the totals.'),
  logLevel: env(
    'LOG_LEVEL',
    schemas.oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    'Log level.',
  ),
} as const;

async function main(): Promise<void> {
  const logger = createLogger('fake-openmeter', process.env.LOG_LEVEL ?? 'info');
  try {
    const config = readConfig(fakeOpenMeterConfigSpec);
    const fake = new FakeOpenMeter(config.token === undefined ? {} : { token: config.token });
    const url = await fake.start(config.port, config.host);
    const shutdown = new Shutdown(logger);
    shutdown.installSignalHandlers();
    shutdown.register('fake openmeter', () => fake.stop());
    let reported = -1;
    const timer = setInterval(() => {
      if (fake.events.length === reported) return;
      reported = fake.events.length;
      const subjects = new Set(fake.events.map((event) => String(event.subject)));
      logger.info(
        { events: reported, requests: fake.requests.length, subjects: [...subjects].sort() },
        'events accepted',
      );
    }, config.reportIntervalMs);
    shutdown.register('report timer', () => clearInterval(timer));
    logger.info({ url: `${url}/api/v1/events`, token: config.token !== undefined }, 'fake openmeter ready');
  } catch (error) {
    exitOnStartupError(logger, error);
  }
}

// Importing the module (the docker structure test reads the spec) must not start a server.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url))
  void main();
