import { env, readConfig, schemas } from '@gpu-meter/kit/config';

/** The simulator's configuration when played live (src/main.ts). */
export const simulatorConfigSpec = {
  scenarioFile: env(
    'SCENARIO_FILE',
    schemas.nonEmpty(),
    'Scenario JSON file to play (see test/simulator/README.md).',
  ),
  host: env('SIMULATOR_HOST', schemas.nonEmpty('127.0.0.1'), 'Address both fake servers listen on.'),
  k8sPort: env(
    'SIMULATOR_K8S_PORT',
    schemas.int(18443, 0, 65535),
    'Port of the fake Kubernetes API (0 = any free port).',
  ),
  dcgmPort: env(
    'SIMULATOR_DCGM_PORT',
    schemas.int(19400, 0, 65535),
    'Port of the fake DCGM exporter (/metrics/<node>).',
  ),
  startMs: env(
    'SIMULATOR_START_MS',
    schemas.optionalString(),
    'Scenario start, epoch ms; default scenario.startMs, else now aligned down.',
  ),
  alignMs: env(
    'SIMULATOR_ALIGN_MS',
    schemas.int(15_000, 1),
    'When the start is "now", align it down to a multiple of this (the sampling interval).',
  ),
  bookmarkIntervalMs: env(
    'SIMULATOR_BOOKMARK_INTERVAL_MS',
    schemas.int(5000, 1),
    'How often watches that allow bookmarks get one.',
  ),
  minWatchTimeoutMs: env(
    'SIMULATOR_MIN_WATCH_TIMEOUT_MS',
    schemas.int(1_800_000, 1),
    'A watch without timeoutSeconds ends after a random time in [this, 2 x this), as kube-apiserver does.',
  ),
};

export type SimulatorConfig = ReturnType<typeof loadConfig>;

export function loadConfig(source: Record<string, string | undefined> = process.env) {
  return readConfig(simulatorConfigSpec, source);
}
