import type { TestProject } from 'vitest/node';
import { containerRuntimeAvailable, startContainers, type StartedServices } from './containers.js';
import { ENDPOINT_KEYS, endpointsFromEnvironment } from './stack-env.js';

import './provided-context.js';

/**
 * Resolves the services integration tests run against: from the environment or `.stack/env` when set,
 * else testcontainers when a container runtime answers, else a hard failure saying how to start them.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const fromEnvironment = endpointsFromEnvironment();
  const missing = ENDPOINT_KEYS.filter((key) => !fromEnvironment[key]);
  let started: StartedServices | undefined;
  let stackEnv: Record<string, string> = fromEnvironment;
  if (missing.length > 0) {
    if (!(await containerRuntimeAvailable())) {
      throw new Error(
        `Integration tests need ${missing.join(', ')}. Start the local stack with \`npm run stack:up\` ` +
          '(it writes .stack/env), set the variables yourself, or run a Docker engine for testcontainers.',
      );
    }
    started = await startContainers();
    stackEnv = { ...started.env, ...fromEnvironment };
  }
  await assertReachable(stackEnv);
  project.provide('stackEnv', stackEnv);
  return async () => {
    for (const container of started?.containers ?? []) await container.stop();
  };
}

/** Fail fast, with the address, when a configured service does not answer. */
async function assertReachable(env: Record<string, string>): Promise<void> {
  const checks: Array<[string, string]> = [
    ['SCHEMA_REGISTRY_URL', `${env.SCHEMA_REGISTRY_URL}/subjects`],
    ['CLICKHOUSE_URL', `${env.CLICKHOUSE_URL}/ping`],
  ];
  for (const [key, url] of checks) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
    } catch (error) {
      throw new Error(
        `${key}=${env[key]} does not answer (${(error as Error).message}); is the stack up? (npm run stack:up)`,
      );
    }
  }
}
