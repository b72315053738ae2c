import { ConfigError } from '@gpu-meter/kit/contracts';
import { createLogger, exitOnStartupError, loadConfigOrExit, Shutdown } from '@gpu-meter/kit/runtime';
import { loadConfig } from './config.js';
import { loadScenario } from './scenario.js';
import { startSimulator } from './simulator.js';

/** Plays a scenario live (real clock): fake Kubernetes API + fake DCGM exporter until SIGTERM. */
const config = loadConfigOrExit(loadConfig);
const logger = createLogger('simulator');
try {
  const scenario = loadScenario(config.scenarioFile);
  const startMs = config.startMs === undefined ? undefined : Number(config.startMs);
  if (startMs !== undefined && !Number.isInteger(startMs))
    throw new ConfigError('SIMULATOR_START_MS', 'must be an integer (epoch ms)');
  const sim = await startSimulator({
    scenario,
    clock: 'real',
    host: config.host,
    k8sPort: config.k8sPort,
    dcgmPort: config.dcgmPort,
    alignMs: config.alignMs,
    bookmarkIntervalMs: config.bookmarkIntervalMs,
    minWatchTimeoutMs: config.minWatchTimeoutMs,
    ...(startMs !== undefined ? { startMs } : {}),
  });
  const shutdown = new Shutdown(logger);
  shutdown.register('simulator', () => sim.close());
  shutdown.installSignalHandlers();
  logger.info(
    {
      k8sUrl: sim.k8sUrl,
      dcgmUrl: `${sim.dcgmBaseUrl}/metrics/<node>`,
      nodes: scenario.nodes.map((n) => n.name),
      startMs: sim.startMs,
      endMs: sim.startMs + scenario.durationMs,
      clusterId: scenario.clusterId,
    },
    'simulator ready',
  );
} catch (error) {
  exitOnStartupError(logger, error);
}
